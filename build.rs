//! Rebuilds the crate when a migration file is added or changed: `sqlx_macros::migrate!`
//! embeds the files it saw at build time, and the compiler only notices edits to those.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
