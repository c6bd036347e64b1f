//! Hostile input for the randomised tests: mutations of valid values, a seeded generator, and the committed
//! corpus of inputs (`tests/corpus/KIND/*`: samples recorded from the Python implementation, and every odd input
//! that once mattered).

use std::path::PathBuf;

/// Mutations of a valid value: truncated, bytes flipped, inserted or replaced by JSON-ish noise.
pub fn mutate(rng: &mut fastrand::Rng, valid: &[u8]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for _ in 0..rng.usize(1..4) {
        match rng.u8(0..5) {
            0 => bytes.truncate(rng.usize(0..=bytes.len())),
            1 if !bytes.is_empty() => {
                let i = rng.usize(0..bytes.len());
                bytes[i] = rng.u8(..);
            }
            2 => {
                let i = rng.usize(0..=bytes.len());
                let noise = [&b"{"[..], b"}", b"\"", b"null", b"\xff\xfe", b"9999-99-99", b"[", b",", b"\n"];
                let piece = noise[rng.usize(0..noise.len())];
                bytes.splice(i..i, piece.iter().copied());
            }
            3 => bytes = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect(),
            _ => bytes.reverse(),
        }
    }
    bytes
}

/// The seed of the default run: the same inputs every time, so a clean run cannot fail on a draw.
const DEFAULT_SEED: u64 = 4_979_701_282_864_276_156;

/// A generator seeded with `HOSTILE_SEED`: a number replays that seed, `random` draws one (a soak: run it in a loop),
/// unset is [`DEFAULT_SEED`]. The seed is printed, so a failure can be replayed.
pub fn seeded() -> fastrand::Rng {
    let seed = match std::env::var("HOSTILE_SEED").ok().as_deref() {
        Some("random") => fastrand::u64(..),
        Some(seed) => seed.parse().unwrap_or_else(|_| panic!("HOSTILE_SEED={seed}: a number, or `random`")),
        None => DEFAULT_SEED,
    };
    println!("HOSTILE_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// The files of `tests/corpus/{kind}` (execution, signal, report, headers), by name.
pub fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(kind);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    files
}
