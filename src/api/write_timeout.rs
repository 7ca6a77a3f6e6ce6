//! A write timeout for the server's connections: a client that reads nothing is cut.
//!
//! hyper has a timeout for reading a request's head but none for writing an answer. An
//! event stream to a subscriber that never reads fills the kernel's send buffer (about
//! 540 KB each on loopback) and then waits forever, holding its connection. Wrapped in
//! [`WriteTimeout`], a connection whose writes make no progress for the limit fails
//! with `TimedOut`, and hyper closes it. Progress means any byte accepted: a slow reader
//! is fine, a stalled one is not.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, whose writes fail after making no progress for `limit`.
pub struct WriteTimeout<T> {
    inner: T,
    limit: Duration,
    /// Running while a write or flush waits; reset by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteTimeout<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        WriteTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes `r` on, starting the stall timer on `Pending` and failing once it ran out.
    fn watch<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {}s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// On tokio's paused clock: no real waiting.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_nothing_is_cut_and_one_that_reads_slowly_is_not() {
        // A pipe with 1 KiB of buffer: the "kernel's send buffer".
        let (server, mut client) = tokio::io::duplex(1024);
        let mut w = WriteTimeout::new(server, Duration::from_secs(30));
        let chunk = [b'x'; 512];
        let mut read = [0u8; 512];
        w.write_all(&[b'x'; 1024]).await.unwrap();
        // A slow reader: the buffer is full, and it takes 512 bytes every 20 s; each
        // write waits 20 s, under the limit, and goes through.
        for _ in 0..5 {
            let reader = async {
                tokio::time::sleep(Duration::from_secs(20)).await;
                client.read_exact(&mut read).await.unwrap();
            };
            let (written, ()) = tokio::join!(w.write_all(&chunk), reader);
            written.unwrap();
        }
        // A stalled reader: 30 s later the write fails.
        let t = tokio::time::Instant::now();
        let e = w.write_all(&chunk).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(t.elapsed(), Duration::from_secs(30));
    }
}
