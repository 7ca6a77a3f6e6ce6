//! Azure identity: which credential ringmaster uses, chosen by configuration, and the
//! tokens it gets. The same code path serves Azure and the simulator: only the
//! authority host, the ARM endpoint and the CA bundle differ.
//!
//! Credentials come from `azure_identity` 1.x, which has no DefaultAzureCredential, so
//! the choice is explicit: workload identity (the default in a pod), managed identity,
//! client secret, or the Azure CLI. Tokens are cached until shortly before they expire
//! and refreshed on a 401. No token or secret is ever logged or printed: they live in
//! [`azure_core::credentials::Secret`] and [`Redacted`], whose Debug hides them.

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The ARM scope.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The scope of the Kubernetes API of Entra-ID-enabled AKS clusters.
pub const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
/// Refresh a cached token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A string that never shows in Debug or Display output.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Redacted {
    fn from(s: String) -> Self {
        Redacted(s)
    }
}

/// Which credential to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialKind {
    /// Workload identity when AZURE_FEDERATED_TOKEN_FILE is set (in a pod), else a
    /// client secret when AZURE_CLIENT_SECRET is set, else managed identity when
    /// IDENTITY_ENDPOINT is set, else the Azure CLI.
    Auto,
    WorkloadIdentity,
    ManagedIdentity,
    ClientSecret,
    AzureCli,
}

/// How to reach Azure (or the simulator) and who to be.
#[derive(Debug, Clone, clap::Args)]
pub struct AzureConfig {
    /// ARM endpoint.
    #[arg(
        long,
        env = "RINGMASTER_ARM_ENDPOINT",
        default_value = "https://management.azure.com"
    )]
    pub arm_endpoint: String,
    /// Entra ID authority host.
    #[arg(
        long,
        env = "AZURE_AUTHORITY_HOST",
        default_value = "https://login.microsoftonline.com"
    )]
    pub authority_host: String,
    /// Extra CA certificate (PEM) to trust, e.g. the simulator's.
    #[arg(long, env = "RINGMASTER_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Which credential to use.
    #[arg(long, value_enum, env = "RINGMASTER_CREDENTIAL", default_value = "auto")]
    pub credential: CredentialKind,
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant_id: Option<String>,
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Client secret (prefer the environment variable to the flag: flags show in `ps`).
    #[arg(long, env = "AZURE_CLIENT_SECRET", hide_env_values = true, value_parser = parse_redacted)]
    pub client_secret: Option<Redacted>,
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE")]
    pub federated_token_file: Option<PathBuf>,
}

fn parse_redacted(s: &str) -> Result<Redacted, String> {
    Ok(Redacted(s.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("reading the CA certificate {path}: {source}")]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA certificate {0} holds no PEM certificate")]
    BadCa(PathBuf),
    #[error("building the HTTP client: {0}")]
    Http(String),
    #[error("{0} is required for credential {1:?}")]
    Missing(&'static str, CredentialKind),
    #[error("creating the {kind:?} credential: {message}")]
    Credential { kind: CredentialKind, message: String },
    #[error("getting a token for {scope}: {message}")]
    Token { scope: String, message: String },
}

impl AzureConfig {
    /// A configuration that talks to a simulator from its ready line.
    pub fn for_simulator(info: &crate::sim::ReadyInfo) -> Self {
        AzureConfig {
            arm_endpoint: info.arm_endpoint.clone(),
            authority_host: info.authority_host.clone(),
            ca_cert: info.ca_cert.as_ref().map(PathBuf::from),
            credential: CredentialKind::ClientSecret,
            tenant_id: Some(info.tenant_id.clone()),
            client_id: Some(info.client_id.clone()),
            client_secret: Some(Redacted(info.client_secret.clone())),
            federated_token_file: None,
        }
    }

    /// The credential `Auto` resolves to in this environment.
    pub fn resolved_kind(&self) -> CredentialKind {
        match self.credential {
            CredentialKind::Auto if self.federated_token_file.is_some() => CredentialKind::WorkloadIdentity,
            CredentialKind::Auto if self.client_secret.is_some() => CredentialKind::ClientSecret,
            CredentialKind::Auto if std::env::var_os("IDENTITY_ENDPOINT").is_some() => CredentialKind::ManagedIdentity,
            CredentialKind::Auto => CredentialKind::AzureCli,
            k => k,
        }
    }

    /// An HTTP client (rustls, ring) that trusts the system roots plus `ca_cert`.
    pub fn http_client(&self) -> Result<reqwest::Client, IdentityError> {
        install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("ringmaster/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|source| IdentityError::ReadCa {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| IdentityError::BadCa(path.clone()))?;
            if certs.is_empty() {
                return Err(IdentityError::BadCa(path.clone()));
            }
            b = b.tls_certs_merge(certs);
        }
        b.build().map_err(|e| IdentityError::Http(e.to_string()))
    }

    fn client_options(&self, http: &reqwest::Client) -> ClientOptions {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = self.authority_host.clone();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..Default::default()
        }
    }

    /// Builds a fresh credential (with an empty token cache).
    fn credential(&self, http: &reqwest::Client) -> Result<Arc<dyn TokenCredential>, IdentityError> {
        let kind = self.resolved_kind();
        let err = |e: azure_core::Error| IdentityError::Credential {
            kind,
            message: e.to_string(),
        };
        let options = self.client_options(http);
        Ok(match kind {
            CredentialKind::ClientSecret => {
                let tenant = self
                    .tenant_id
                    .as_deref()
                    .ok_or(IdentityError::Missing("AZURE_TENANT_ID", kind))?;
                let client = self
                    .client_id
                    .clone()
                    .ok_or(IdentityError::Missing("AZURE_CLIENT_ID", kind))?;
                let secret = self
                    .client_secret
                    .clone()
                    .ok_or(IdentityError::Missing("AZURE_CLIENT_SECRET", kind))?;
                azure_identity::ClientSecretCredential::new(
                    tenant,
                    client,
                    Secret::new(secret.0),
                    Some(azure_identity::ClientSecretCredentialOptions {
                        client_options: options,
                    }),
                )
                .map_err(err)?
            }
            CredentialKind::WorkloadIdentity => azure_identity::WorkloadIdentityCredential::new(Some(
                azure_identity::WorkloadIdentityCredentialOptions {
                    credential_options: azure_identity::ClientAssertionCredentialOptions {
                        client_options: options,
                    },
                    client_id: self.client_id.clone(),
                    tenant_id: self.tenant_id.clone(),
                    token_file_path: self.federated_token_file.clone(),
                },
            ))
            .map_err(err)?,
            CredentialKind::ManagedIdentity => {
                let user_assigned_id = self.client_id.clone().map(azure_identity::UserAssignedId::ClientId);
                azure_identity::ManagedIdentityCredential::new(Some(azure_identity::ManagedIdentityCredentialOptions {
                    user_assigned_id,
                    client_options: options,
                }))
                .map_err(err)?
            }
            CredentialKind::AzureCli | CredentialKind::Auto => {
                azure_identity::AzureCliCredential::new(Some(azure_identity::AzureCliCredentialOptions {
                    tenant_id: self.tenant_id.clone(),
                    ..Default::default()
                }))
                .map_err(err)?
            }
        })
    }
}

/// Installs rustls's ring provider as the process default. ring is the only crypto
/// library in the tree (aws-lc-rs is kept out: see Cargo.toml), but reqwest is built
/// without a provider of its own and asks for the process default.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where ARM and Kubernetes clients get bearer tokens.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token for `scope`; `refresh` forces a new one (after a 401).
    fn token<'a>(&'a self, scope: &'a str, refresh: bool) -> BoxFuture<'a, Result<Secret, IdentityError>>;
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    expires: std::time::SystemTime,
}

/// Tokens from an `azure_identity` credential, cached per scope.
pub struct AzureTokens {
    config: AzureConfig,
    http: reqwest::Client,
    credential: Mutex<Arc<dyn TokenCredential>>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl fmt::Debug for AzureTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureTokens")
            .field("credential", &self.config.resolved_kind())
            .finish_non_exhaustive()
    }
}

impl AzureTokens {
    pub fn new(config: AzureConfig, http: reqwest::Client) -> Result<Self, IdentityError> {
        let credential = config.credential(&http)?;
        Ok(Self {
            config,
            http,
            credential: Mutex::new(credential),
            cache: Mutex::new(HashMap::new()),
        })
    }
}

impl TokenSource for AzureTokens {
    fn token<'a>(&'a self, scope: &'a str, refresh: bool) -> BoxFuture<'a, Result<Secret, IdentityError>> {
        Box::pin(async move {
            if !refresh
                && let Some(c) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(scope)
                && c.expires > std::time::SystemTime::now() + REFRESH_MARGIN
            {
                return Ok(c.token.clone());
            }
            if refresh {
                // azure_identity caches inside the credential; a 401 means that token is
                // no good, so start from a new credential with an empty cache.
                let fresh = self.config.credential(&self.http)?;
                *self.credential.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
            let credential = self.credential.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let t = credential
                .get_token(&[scope], None)
                .await
                .map_err(|e| IdentityError::Token {
                    scope: scope.to_string(),
                    message: e.to_string(),
                })?;
            let expires =
                std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(t.expires_on.unix_timestamp().max(0) as u64);
            self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
                scope.to_string(),
                Cached {
                    token: t.token.clone(),
                    expires,
                },
            );
            Ok(t.token)
        })
    }
}
