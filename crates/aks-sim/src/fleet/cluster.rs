//! Compilation of one cluster of the fleet file, with its node pools and workloads
//! (also used by `generate` for generated clusters): their names, versions, counts and
//! upgrade settings checked, and turned into `ClusterDef`, `PoolDef` and `WorkloadDef`.

use super::compile::{
    CLUSTER_NAME_RULE, Compiler, POOL_NAME_RULE, parse_count_or_percent, valid_cluster_name, valid_pool_name,
};
use super::model::{ClusterDef, OsType, Pdb, PoolDef, PoolMode, Undrainable, UpgradeSettings, WorkloadDef};
use super::raw::{RawCluster, RawPool, RawWorkload};
use crate::version::KubeVersion;
use std::collections::BTreeMap;
use std::time::Duration;
use yaml_spans::Spanned;

pub(super) fn compile_cluster(
    c: &mut Compiler,
    rc: &Spanned<RawCluster>,
    subs: &[String],
    nets: &[crate::network::VnetDef],
) -> Option<ClusterDef> {
    let r = &rc.value;
    if !valid_cluster_name(&r.name.value) {
        c.d.at(
            &r.name,
            format!("cluster name `{}` does not match {CLUSTER_NAME_RULE}", r.name.value),
        );
    }
    let subscription = match &r.subscription {
        Some(s) if subs.contains(&s.value) => s.value.clone(),
        Some(s) => {
            c.d.at(s, format!("subscription `{}` is not in `subscriptions`", s.value));
            s.value.clone()
        }
        None if subs.len() == 1 => subs[0].clone(),
        None => {
            c.d.at(
                &r.name,
                "`subscription` is required when the fleet has several subscriptions",
            );
            String::new()
        }
    };
    let version = c.version(&r.kubernetes_version);
    let auto_upgrade_channel = c.one_of(
        &r.auto_upgrade_channel,
        &["none", "patch", "stable", "rapid", "node-image"],
        "none",
        "auto_upgrade_channel",
    );
    let node_os_upgrade_channel = c.one_of(
        &r.node_os_upgrade_channel,
        &["None", "Unmanaged", "NodeImage", "SecurityPatch"],
        "NodeImage",
        "node_os_upgrade_channel",
    );
    let support_plan = c.one_of(
        &r.support_plan,
        &["KubernetesOfficial", "AKSLongTermSupport"],
        "KubernetesOfficial",
        "support_plan",
    );
    let mut maintenance = BTreeMap::new();
    for (name, props) in &r.maintenance {
        for problem in crate::maintenance::check(name, &props.value).err().unwrap_or_default() {
            c.d.at(props, problem);
        }
        maintenance.insert(name.clone(), props.value.clone());
    }
    let conditions = crate::conditions::compile(c, r);
    let cv = version?;
    crate::conditions::check_removed_releases(c, r, cv);
    let mut pools: Vec<PoolDef> = Vec::new();
    for p in &r.pools {
        if let Some(mut pool) = compile_pool(c, p, cv) {
            if let Some(s) = &p.value.subnet {
                pool.subnet = crate::conditions::resolve_subnet(c, s, nets, &subscription, &r.location.value);
            }
            if pools.iter().any(|q| q.name == pool.name) {
                c.d.at(&p.value.name, format!("pool `{}` is defined twice", pool.name));
            }
            pools.push(pool);
        }
    }
    if r.pools.is_empty() {
        c.d.at(&r.name, "a cluster needs at least one pool");
    } else if !pools
        .iter()
        .any(|p| p.mode == PoolMode::System && p.os_type == OsType::Linux)
        && pools.len() == r.pools.len()
    {
        c.d.at(&r.name, "a cluster needs a Linux pool with mode System");
    }
    let mut workloads: Vec<WorkloadDef> = Vec::new();
    for w in &r.workloads {
        if let Some(wl) = compile_workload(c, w) {
            if workloads
                .iter()
                .any(|o| o.name == wl.name && o.namespace == wl.namespace)
            {
                c.d.at(
                    &w.value.name,
                    format!("workload `{}/{}` is defined twice", wl.namespace, wl.name),
                );
            }
            if let Some(p) = &wl.pool
                && !pools.iter().any(|q| &q.name == p)
            {
                c.d.at(
                    &w.value.name,
                    format!(
                        "workload `{}` is pinned to pool `{p}`, which the cluster does not have",
                        wl.name
                    ),
                );
            }
            if !pools.iter().any(|q| q.os_type == wl.os) && !pools.is_empty() {
                c.d.at(
                    &w.value.name,
                    format!(
                        "workload `{}` needs {} nodes and the cluster has none",
                        wl.name,
                        wl.os.as_str()
                    ),
                );
            }
            workloads.push(wl);
        }
    }
    Some(ClusterDef {
        subscription,
        resource_group: r.resource_group.value.clone(),
        name: r.name.value.clone(),
        location: r.location.value.clone(),
        tags: r.tags.clone(),
        kubernetes_version: cv,
        auto_upgrade_channel,
        node_os_upgrade_channel,
        entra_id: r.entra_id,
        disable_local_accounts: r.disable_local_accounts,
        support_plan,
        maintenance,
        pools,
        workloads,
        conditions,
    })
}

pub(crate) fn compile_pool(c: &mut Compiler, p: &Spanned<RawPool>, cluster_version: KubeVersion) -> Option<PoolDef> {
    let r = &p.value;
    if !valid_pool_name(&r.name.value) {
        c.d.at(
            &r.name,
            format!("pool name `{}` does not match {POOL_NAME_RULE}", r.name.value),
        );
    }
    let mode = match c.one_of(&r.mode, &["System", "User"], "User", "mode").as_str() {
        "System" => PoolMode::System,
        _ => PoolMode::User,
    };
    let os_type = match c.one_of(&r.os_type, &["Linux", "Windows"], "Linux", "os_type").as_str() {
        "Windows" => OsType::Windows,
        _ => OsType::Linux,
    };
    if os_type == OsType::Windows && mode == PoolMode::System {
        c.d.at(&r.name, "a Windows pool cannot have mode System");
    }
    let os_sku = r.os_sku.as_ref().map_or_else(
        || {
            if os_type == OsType::Windows {
                "Windows2022"
            } else {
                "Ubuntu"
            }
            .to_string()
        },
        |s| s.value.clone(),
    );
    if r.count.value == 0 || r.count.value > 1000 {
        c.d.at(&r.count, format!("count {} is outside 1..1000", r.count.value));
    }
    let version = match &r.version {
        Some(v) => c.version(v)?,
        None => cluster_version,
    };
    if let Some(v) = &r.version
        && let Err(e) = crate::rules::check_skew(version, cluster_version)
    {
        c.d.at(v, e.message);
    }
    let u = &r.upgrade_settings;
    let mut count_or_percent = |s: &Option<Spanned<String>>, default: &str, field: &str| match s {
        None => default.to_string(),
        Some(v) => {
            if parse_count_or_percent(&v.value).is_none() {
                c.d.at(
                    v,
                    format!("{field} `{}` is not a count or a percentage (e.g. 1 or 33%)", v.value),
                );
            }
            v.value.clone()
        }
    };
    let max_surge = count_or_percent(&u.max_surge, "10%", "max_surge");
    let max_unavailable = count_or_percent(&u.max_unavailable, "0", "max_unavailable");
    if parse_count_or_percent(&max_surge).is_some_and(|(v, _)| v == 0)
        && parse_count_or_percent(&max_unavailable).is_some_and(|(v, _)| v == 0)
    {
        c.d.at(&r.name, "max_surge and max_unavailable cannot both be 0");
    }
    if let Some(s) = &u.node_soak_minutes
        && s.value > 30
    {
        c.d.at(s, format!("node_soak_minutes {} is outside 0..30", s.value));
    }
    if let Some(s) = &u.drain_timeout_minutes
        && !(1..=1440).contains(&s.value)
    {
        c.d.at(s, format!("drain_timeout_minutes {} is outside 1..1440", s.value));
    }
    let undrainable = match c
        .one_of(
            &u.undrainable_node_behavior,
            &["Schedule", "Cordon"],
            "Schedule",
            "undrainable_node_behavior",
        )
        .as_str()
    {
        "Cordon" => Undrainable::Cordon,
        _ => Undrainable::Schedule,
    };
    let vm_size = match &r.vm_size {
        None if os_type == OsType::Windows => "Standard_D4s_v5".to_string(),
        None => "Standard_D2s_v5".to_string(),
        Some(v) => match crate::quota::vm_size(&v.value) {
            Some(known) => known.name.to_string(),
            None => {
                c.d.at(
                    v,
                    format!(
                        "vm_size `{}` is not one the simulator knows ({})",
                        v.value,
                        crate::quota::known_sizes()
                    ),
                );
                v.value.clone()
            }
        },
    };
    if let Some(m) = &r.max_pods
        && !(10..=250).contains(&m.value)
    {
        c.d.at(m, format!("max_pods {} is outside 10..250", m.value));
    }
    let max_pods = r.max_pods.as_ref().map(|m| m.value);
    Some(PoolDef {
        name: r.name.value.clone(),
        mode,
        os_type,
        os_sku,
        count: r.count.value,
        version,
        node_image: r.node_image.as_ref().map(|s| s.value.clone()),
        vm_size,
        subnet: None,
        max_pods,
        upgrade: UpgradeSettings {
            max_surge,
            max_unavailable,
            drain_timeout_minutes: u.drain_timeout_minutes.as_ref().map_or(30, |s| s.value),
            node_soak_minutes: u.node_soak_minutes.as_ref().map_or(0, |s| s.value),
            undrainable,
        },
    })
}

pub(crate) fn compile_workload(c: &mut Compiler, w: &Spanned<RawWorkload>) -> Option<WorkloadDef> {
    let r = &w.value;
    let dns_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if !dns_ok(&r.name.value) {
        c.d.at(&r.name, format!("workload name `{}` is not a DNS label", r.name.value));
    }
    if !dns_ok(&r.namespace.value) {
        c.d.at(
            &r.namespace,
            format!("namespace `{}` is not a DNS label", r.namespace.value),
        );
    }
    let os = match c.one_of(&r.os, &["Linux", "Windows"], "Linux", "os").as_str() {
        "Windows" => OsType::Windows,
        _ => OsType::Linux,
    };
    let pdb = match &r.pdb {
        None => None,
        Some(p) => match (p.value.min_available, p.value.max_unavailable) {
            (Some(m), None) => {
                if m > r.replicas.value {
                    c.d.at(
                        p,
                        format!("pdb.min_available {m} is more than replicas {}", r.replicas.value),
                    );
                }
                Some(Pdb::MinAvailable(m))
            }
            (None, Some(m)) => Some(Pdb::MaxUnavailable(m)),
            _ => {
                c.d.at(p, "pdb needs exactly one of min_available and max_unavailable");
                None
            }
        },
    };
    Some(WorkloadDef {
        name: r.name.value.clone(),
        namespace: r.namespace.value.clone(),
        replicas: r.replicas.value,
        readiness_delay: c.duration(&r.readiness_delay, Duration::from_secs(10)),
        pdb,
        os,
        pool: r.pool.as_ref().map(|p| p.value.clone()),
    })
}
