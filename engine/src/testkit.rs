//! Helpers shared by the engine's tests, its crash-test tool and the
//! benchmarks. Not part of the engine's API.

use crate::layout::BLOCK_SIZE;

/// Deterministic, incompressible content for block `block` of chunk `id`,
/// generation `gen`: two writers that agree on the triple agree on the bytes.
pub fn pattern(id: u64, block: usize, gen: u32) -> Vec<u8> {
    let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (block as u64) << 20 ^ u64::from(gen) << 40;
    (0..BLOCK_SIZE)
        .map(|_| {
            // xorshift64: cheap and never stuck at zero for these seeds.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
