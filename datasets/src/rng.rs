//! A counter-based random stream per sample: sample `i` of a dataset with seed `s` draws from a generator
//! seeded by `(s, i)` alone, so its data do not depend on how many samples, ranks or threads there are, nor on the
//! order in which samples are produced.

/// SplitMix64 step (Steele, Lea & Flood 2014), used to derive seeds.
#[inline]
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ (Blackman & Vigna 2018) seeded from `(seed, sample)` by SplitMix64.
#[derive(Clone, Debug)]
pub struct SampleRng {
    s: [u64; 4],
}

impl SampleRng {
    /// The stream of sample `sample` of a dataset with seed `seed`.
    pub fn new(seed: u64, sample: u64) -> Self {
        let mut x = seed;
        let a = splitmix64(&mut x);
        let mut y = sample ^ a.rotate_left(17);
        let mut s = [0; 4];
        for v in &mut s {
            *v = splitmix64(&mut y) ^ splitmix64(&mut x);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Self { s }
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let r = (self.s[0].wrapping_add(self.s[3])).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [a, b).
    #[inline]
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }

    /// Uniform integer in `lo..=hi`.
    #[inline]
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Standard normal (Box–Muller).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| SampleRng::new(7, 3).next_u64()).collect();
        assert!(a.iter().all(|&v| v == a[0]));
        let mut r1 = SampleRng::new(7, 3);
        let mut r2 = SampleRng::new(7, 4);
        let mut r3 = SampleRng::new(8, 3);
        let (x1, x2, x3) = (r1.next_u64(), r2.next_u64(), r3.next_u64());
        assert!(x1 != x2 && x1 != x3 && x2 != x3);
        // moments of the uniform and normal draws
        let mut r = SampleRng::new(1, 0);
        let n = 200_000;
        let (mut m, mut m2) = (0.0, 0.0);
        for _ in 0..n {
            let z = r.normal();
            m += z;
            m2 += z * z;
        }
        assert!((m / n as f64).abs() < 0.01 && (m2 / n as f64 - 1.0).abs() < 0.02);
        let mean_u: f64 = (0..n).map(|_| r.uniform()).sum::<f64>() / n as f64;
        assert!((mean_u - 0.5).abs() < 0.005);
    }
}
