//! Runs every fuzz target over its kept corpus (`fuzz/corpus/<target>/`) and a fixed number
//! of deterministic mutations of each seed: a short fuzzing run on stable Rust, in the
//! ordinary test suite. `fuzz/README.md` says how to run the targets under libFuzzer.

use std::path::PathBuf;

/// Mutations tried per seed (`SWITCHBOARD_FUZZ_MUTATIONS` overrides, for a longer run).
fn mutations() -> usize {
    std::env::var("SWITCHBOARD_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds
}

/// xorshift64: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the parsers, inserted by mutations.
const INSERTS: &[u8] = b"{}[]\":,\\\n\r0e-";

/// One mutation: flip, insert, delete, duplicate a run, or truncate.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 => data.insert(at, INSERTS[rng.below(INSERTS.len())]),
            2 if at < data.len() => {
                data.remove(at);
            }
            3 => {
                let end = (at + rng.below(32)).min(data.len());
                let run = data[at..end].to_vec();
                data.splice(at..at, run);
            }
            _ => data.truncate(at),
        }
    }
    data
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    let mut rng = Rng(0x5eed_f00d_dead_beef);
    for (name, target) in switchboard_fuzz_targets::TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "{name} has no corpus");
        for seed in &seeds {
            target(seed);
            for _ in 0..mutations() {
                target(&mutate(seed, &mut rng));
            }
        }
    }
}
