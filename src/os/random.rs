//! Randomness from the kernel (getrandom(2)), for what must not be predictable: a new run's seed, a
//! cluster's uid, a super user's password. Everything seeded lives in `model::rng`.

/// 64 random bits from the kernel. getrandom(2) on Linux blocks only before the pool is first seeded at
/// boot; should it fail anyway, the time and pid still make a value no two runs share.
pub fn u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ u64::from(std::process::id()).rotate_left(32)
    })
}

/// `N` random bytes from the kernel, or the error that says why there are none.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(std::io::Error::other)?;
    Ok(b)
}
