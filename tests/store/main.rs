//! The store conformance suite: every test below runs once per backend.
//!
//! Each conformance test is a plain `async fn(&Fixture)` in one of the topic modules; the
//! [`conformance!`] macro instantiates it as `sqlite::<topic>::<test>` (a fresh SQLite file)
//! and `postgres::<topic>::<test>` (a fresh PostgreSQL schema). Run one backend with
//! `cargo test --test store sqlite::` or `cargo test --test store postgres::`.
//!
//! PostgreSQL: `KEYSTILE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! When it cannot be reached the PostgreSQL tests are skipped, unless `CI=true`, where they fail.

mod api_keys;
mod audit;
mod basics;
mod credentials;
mod fixtures;
mod harness;
mod legacy_data;
mod projects;
mod roles;
mod tenants;
mod upgrade;

/// Instantiates `$topic::$test` for one backend, given an expression producing an
/// `Option<Fixture>` (`None` means "skip").
macro_rules! backend {
    ($fixture:expr; $($topic:ident: [$($test:ident),+ $(,)?]),+ $(,)?) => {
        $(
            mod $topic {
                $(
                    #[tokio::test]
                    async fn $test() {
                        crate::harness::run($fixture, |fx| async move { crate::$topic::$test(&fx).await }).await;
                    }
                )+
            }
        )+
    };
}

/// Instantiates every listed conformance test once per backend.
macro_rules! conformance {
    ($($suite:tt)+) => {
        mod sqlite {
            backend!(Some(crate::harness::Fixture::sqlite().await); $($suite)+);
        }
        mod postgres {
            backend!(crate::harness::Fixture::postgres().await; $($suite)+);
        }
    };
}

conformance! {
    basics: [
        ping_answers_on_a_fresh_database,
        opening_the_same_database_again_applies_no_migration_twice,
        ensure_tenant_is_idempotent_and_returns_the_same_tenant,
        concurrent_ensure_tenant_calls_agree_on_one_tenant,
        an_ensured_tenant_that_was_terminated_stays_terminated,
        timestamps_round_trip_exactly,
        a_database_whose_applied_migration_differs_from_its_file_is_refused,
    ],
    upgrade: [
        a_database_of_the_last_landing_upgrades_in_place_and_reads_back_exactly,
    ],
    roles: [
        a_created_role_can_be_shown_and_listed_by_name,
        a_duplicate_role_name_in_the_same_tenant_is_a_conflict,
        the_same_role_name_in_another_tenant_is_fine,
        a_role_of_another_tenant_is_not_found,
        deleting_a_role_removes_it_and_a_second_delete_is_not_found,
        a_role_used_by_an_unrevoked_key_cannot_be_deleted_until_the_key_is_revoked,
    ],
    api_keys: [
        an_api_key_must_use_a_role_of_its_own_tenant,
        a_created_api_key_is_found_by_hash_with_its_role_and_tenant_status,
        a_key_of_a_terminated_tenant_reports_the_tenant_status,
        a_duplicate_key_hash_is_a_conflict,
        listing_api_keys_excludes_revoked_keys_and_puts_the_newest_first,
        a_revoked_key_is_still_found_by_hash_with_revoked_at_set,
        revoking_a_key_twice_is_not_found_the_second_time,
        touching_a_key_records_when_it_was_last_used,
        counting_api_keys_counts_only_the_tenants_unrevoked_keys,
    ],
    credentials: [
        a_created_credential_round_trips_field_for_field,
        listing_credentials_pages_through_aliases_in_order_without_duplicates,
        paging_visits_every_alias_exactly_once_whatever_its_characters,
        a_duplicate_alias_in_the_same_tenant_is_a_conflict,
        the_same_alias_in_another_tenant_is_fine,
        another_tenant_cannot_read_update_rotate_or_delete_a_credential,
        operations_on_a_missing_credential_are_not_found,
        updating_a_credential_persists_policy_inject_description_and_metadata_but_not_status,
        rotating_a_credential_bumps_the_version_and_replaces_the_sealed_bytes,
        rotating_from_a_stale_version_is_a_conflict,
        concurrent_rotations_from_the_same_version_let_exactly_one_win,
        a_deleted_credential_is_not_found_afterwards,
    ],
    audit: [
        appending_a_batch_chains_its_events_in_order_and_round_trips_every_field,
        the_chain_continues_across_batches_and_each_tenant_has_its_own,
        listing_filters_by_every_field_and_pages_with_a_cursor,
        verification_catches_an_edited_row,
        verification_catches_an_edit_that_also_recomputes_the_rows_hash,
        editing_a_row_and_recomputing_every_later_hash_and_the_head_without_the_key_fails,
        rewriting_a_whole_chain_unkeyed_fails_verification,
        deleting_one_event_in_the_middle_and_renumbering_fails_verification,
        verification_catches_a_deleted_row,
        verification_catches_the_last_row_deleted,
        deleting_the_newest_events_and_rewinding_the_head_fails_against_the_checkpoint,
        a_checkpoint_that_does_not_match_its_event_or_is_forged_fails_verification,
        verification_catches_two_swapped_rows,
        two_stores_on_one_database_appending_at_once_never_fork_a_chain,
        indexing_a_journal_records_its_checkpoint_in_the_same_transaction,
        a_batch_larger_than_one_insert_is_chained_whole,
        fields_cut_to_their_bounds_are_stored_and_verify,
        only_chains_whose_newest_link_is_unkeyed_are_listed_as_unkeyed,
        an_event_added_past_the_head_fails_verification,
    ],
    tenants: [
        a_created_tenant_round_trips_with_its_plan_admin_role_and_key,
        creating_a_tenant_with_a_taken_name_is_a_conflict_and_leaves_nothing_behind,
        listing_tenants_pages_by_name,
        a_tenants_plan_and_status_can_be_changed_and_keys_see_it,
        usage_adds_up_per_tenant_and_period,
        concurrent_usage_additions_are_never_lost,
        usage_of_a_missing_tenant_cannot_be_added,
    ],
    projects: [
        a_created_project_round_trips_and_names_are_unique_across_tenants,
        keys_by_name_find_the_tenant_and_respect_the_rotation_overlap,
        secrets_are_created_updated_listed_and_deleted_within_their_tenant,
        deleting_a_project_takes_its_keys_secrets_and_nonces,
        a_nonce_is_accepted_once_until_its_retention_ends,
        concurrent_uses_of_one_nonce_let_exactly_one_through,
    ],
}

/// SQLite only: file permissions.
mod sqlite_files {
    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_and_shm_files_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt as _;

        use keystile::store::{SqlStore, Store as _};

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keystile.db");
        // A database left world-readable by an earlier version is made private too.
        std::fs::write(&path, b"").expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = SqlStore::open(&path).await.expect("open");
        store.ensure_tenant("acme").await.expect("a write, so the WAL exists");
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
}
