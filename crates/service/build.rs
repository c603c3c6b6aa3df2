//! Compiles the public gRPC API (proto/attune/v1) with protox: no system `protoc` needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let descriptors = protox::compile(["attune/v1/attune.proto"], ["../../proto"])?;
    tonic_prost_build::configure()
        .bytes(".attune.v1.AudioChunk.audio")
        .compile_fds(descriptors)?;
    Ok(())
}
