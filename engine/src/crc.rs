//! CRC-32 as MooseFS uses it: the zlib/IEEE polynomial, not Castagnoli.

/// CRC-32 of 65 536 zero bytes: what a missing or all-zero block checks to.
pub const EMPTY_BLOCK_CRC: u32 = 0xD797_8EEB;

/// CRC-32 (zlib) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// CRC-32 of `len` zero bytes, computed without a zero buffer.
pub fn crc32_zeros(len: usize) -> u32 {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut hasher = crc32fast::Hasher::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(ZEROS.len());
        hasher.update(&ZEROS[..n]);
        left -= n;
    }
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::BLOCK_SIZE;

    #[test]
    fn matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(&vec![0u8; BLOCK_SIZE]), EMPTY_BLOCK_CRC);
        assert_eq!(crc32_zeros(BLOCK_SIZE), EMPTY_BLOCK_CRC);
        assert_eq!(crc32_zeros(10), crc32(&[0u8; 10]));
    }
}
