//! What the data plane needs to serve requests without the database on its hot path: an
//! organization's whole configuration in one consistent read, in-memory secret unsealing
//! and token fingerprints, and the change log that tells replicas what to reload. Written
//! once for both back ends (see `ops_audit` for what the expansion site provides).

macro_rules! ops_dataplane {
    ($store:ty) => {
        impl $store {
            /// Every part is read in one read transaction, so the view never mixes the
            /// state before and after a concurrent write, and `version` is the config
            /// version that state belongs to.
            async fn op_load_org_config(&self, org: OrgId) -> StoreResult<Option<OrgConfig>> {
                let mut tx = self.read_tx().await?;
                let Some(row) = sqlx::query(sql::ORG_BY_ID)
                    .bind(org.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(None);
                };
                let organization = rows::organization(&row)?;
                let providers = Self::providers_in(&mut tx, org).await?;
                let defaults = Self::defaults_in(&mut tx, org).await?;
                let settings = Self::ai_settings_in(&mut tx, org)
                    .await?
                    .unwrap_or_default();
                let dek = Self::data_key_in(&mut tx, org).await.map_err(|e| match e {
                    StoreError::NotFound => StoreError::corrupt("an organization has no data key"),
                    other => other,
                })?;
                let secrets = sqlx::query(sql::SEALED_SECRETS)
                    .bind(org.to_string())
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok(SealedSecret {
                            name: row.text("name")?,
                            ciphertext: row.bytes("ciphertext")?,
                            wrapped_data_key: dek.bytes.clone(),
                            kek_version: dek.kek_version,
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                let version = Self::config_version_in(&mut tx).await?;
                tx.commit().await?;
                Ok(Some(OrgConfig {
                    org: organization,
                    providers,
                    defaults,
                    settings,
                    secrets,
                    version,
                }))
            }

            fn op_unseal(&self, org: OrgId, secret: &SealedSecret) -> StoreResult<SecretValue> {
                self.vault.unseal(
                    org,
                    &secret.name,
                    &secret.wrapped_data_key,
                    secret.kek_version,
                    &secret.ciphertext,
                )
            }

            /// The same keyed hash `authenticate_token` compares with the stored one.
            fn op_token_fingerprint(&self, token: &str) -> Option<TokenFingerprint> {
                let (public_id, secret) = tokens::parse_token(token)?;
                Some(TokenFingerprint {
                    public_id: public_id.to_owned(),
                    digest: self.vault.token_digest(secret),
                })
            }

            /// Reads the change log and the current version in one snapshot. When the log
            /// cannot account for every version after `since` (pruned, written before the
            /// log existed, or `since` is not a version of this database), the answer is
            /// every organization: the caller reloads everything, which is always correct.
            async fn op_changes_since(&self, since: i64) -> StoreResult<ConfigChanges> {
                let mut tx = self.read_tx().await?;
                let current = Self::config_version_in(&mut tx).await?;
                let rows = sqlx::query(sql::CHANGED_ORGS)
                    .bind(since)
                    .fetch_all(&mut *tx)
                    .await?;
                let logged = rows
                    .iter()
                    .map(|row| Ok((support::parse_org_id(&row.text("org_id")?)?, row.int("n")?)))
                    .collect::<StoreResult<Vec<_>>>()?;
                let oldest_at = rows
                    .iter()
                    .filter_map(|row| row.text("first_at").ok())
                    .filter_map(|at| Timestamp::parse(&at).ok())
                    .min();
                let orgs = match support::changed_orgs(since, current, logged) {
                    Some(orgs) => orgs,
                    None => sqlx::query(sql::ALL_ORG_IDS)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|row| support::parse_org_id(&row.text("id")?))
                        .collect::<StoreResult<Vec<_>>>()?,
                };
                tx.commit().await?;
                Ok(ConfigChanges {
                    version: current,
                    orgs,
                    oldest_at,
                })
            }
        }
    };
}
