//! `include_dir!` cannot tell cargo which files it read, so an edited page, asset or text would
//! otherwise leave a stale binary behind. Cargo scans a directory named here recursively.
fn main() {
    for path in [
        "../../web/pages",
        "../../web/assets",
        "../../web/content.json",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
