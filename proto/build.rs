//! Generates the gRPC code at build time with a vendored `protoc`, so no system protoc is
//! needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let files = [
        "proto/raft.proto",
        "proto/inventory.proto",
        "proto/admin.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    // Commands and outcomes as `bytes::Bytes`: the gateway keeps one encoded copy of each
    // command for every attempt and batch it travels in, and decoding slices the message.
    tonic_prost_build::configure()
        .bytes(".inventory.SubmitRequest.commands")
        .bytes(".inventory.Outcomes.outcomes")
        .compile_protos(&files, &["proto"])?;
    Ok(())
}
