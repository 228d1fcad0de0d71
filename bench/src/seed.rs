//! Seeds a data directory with many credentials and API keys straight through the gateway's
//! own store and envelope encryption (the same code the API runs, minus HTTP), which is far
//! faster than 200 000 API calls.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use keystile::crypto::token;
use keystile::crypto::{Aad, MasterKey, Sealed};
use keystile::domain::credential::RawSecretData;
use keystile::domain::glob::Glob;
use keystile::domain::{
    Alias, ApiKeyId, CredentialId, CredentialKind, CredentialSecret, EgressPolicy, Name, Permission, Permissions,
    RoleId, Scopes,
};
use keystile::store::sqlite::SqliteStore;
use keystile::store::{ApiKeyRecord, CredentialRecord, CredentialStatus, RoleRecord, Store as _, now};

/// How many writes are in flight at once (SQLite serialises them; this hides the round trips).
const IN_FLIGHT: usize = 4;

/// Creates `credentials` api_key credentials (`seed-000000`…) and `keys` API keys in the
/// default tenant of the database under `data_dir`; returns how long it took.
pub async fn seed(data_dir: &Path, master: &MasterKey, credentials: usize, keys: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    std::fs::create_dir_all(data_dir)?;
    let store = SqliteStore::open(&data_dir.join("keystile.db")).await?;
    let tenant = store.ensure_tenant(keystile::server::DEFAULT_TENANT).await?;
    let role = RoleRecord {
        id: RoleId::generate(),
        tenant_id: tenant.id.clone(),
        name: Name::parse("seeded")?,
        description: None,
        permissions: Permissions::new([Permission::Read, Permission::Execute]),
        credential_scopes: Scopes::new(vec![Glob::parse("seed-*")?]),
        created_at: now(),
    };
    store.create_role(&role).await.context("seed role")?;
    let policy: EgressPolicy = serde_json::from_value(serde_json::json!({"allowed_hosts": ["api.example.com"]}))?;
    let store_ref = &store;
    futures_util::stream::iter(0..credentials)
        .map(|i| {
            let tenant = tenant.id.clone();
            let policy = policy.clone();
            async move {
                let raw: RawSecretData =
                    serde_json::from_value(serde_json::json!({"key": format!("sk_seed_{i:08}_secret")}))?;
                let secret = CredentialSecret::from_raw(CredentialKind::ApiKey, raw)?;
                let at = now();
                let mut c = CredentialRecord {
                    id: CredentialId::generate(),
                    tenant_id: tenant,
                    alias: Alias::parse(&format!("seed-{i:06}"))?,
                    kind: CredentialKind::ApiKey,
                    status: CredentialStatus::Active,
                    version: 1,
                    inject: None,
                    policy,
                    description: None,
                    metadata: serde_json::Map::new(),
                    sealed: Sealed {
                        wrapped_key: Vec::new(),
                        ciphertext: Vec::new(),
                    },
                    created_at: at,
                    updated_at: at,
                };
                let aad = Aad {
                    kind: "credential",
                    tenant: c.tenant_id.as_str(),
                    object_id: c.id.as_str(),
                    version: c.version,
                };
                c.sealed = Sealed::seal(master, aad, &secret.to_plaintext());
                store_ref.create_credential(&c).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await
        .context("seeding credentials")?;
    futures_util::stream::iter(0..keys)
        .map(|i| {
            let tenant = tenant.id.clone();
            let role = role.id.clone();
            async move {
                let t = token::generate();
                let key = ApiKeyRecord {
                    id: ApiKeyId::generate(),
                    tenant_id: tenant,
                    name: Name::parse(&format!("seed key {i}"))?,
                    key_prefix: t.prefix,
                    key_hash: t.hash,
                    role_id: role,
                    expires_at: None,
                    last_used_at: None,
                    revoked_at: None,
                    created_at: now(),
                };
                store_ref.create_api_key(&key).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await
        .context("seeding API keys")?;
    store.pool().close().await;
    Ok(started.elapsed())
}
