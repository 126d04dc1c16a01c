//! A small deterministic generator for the crate's randomized tests: seeded by the test, so a
//! failure reproduces.

/// A 64-bit linear congruential generator (Knuth's MMIX constants), high bits out.
pub(crate) struct TestRng(u64);

impl TestRng {
    /// A generator starting from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        TestRng(seed)
    }

    /// The next 31 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}
