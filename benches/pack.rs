//! Building a pack: zstd-compress 16 MiB of chunks and encrypt the pack to one recipient, in
//! MB/s of chunk data, on incompressible data and on SQL-like text (one core).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lifeboat::repo::crypto::SecretKey;
use lifeboat::repo::ids::ChunkId;
use lifeboat::repo::pack::PackBuilder;
use rand::{RngCore, SeedableRng};

fn chunks(sql: bool) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    (0..16)
        .map(|c| {
            let mut v = vec![0u8; 1 << 20];
            if sql {
                v.clear();
                let mut i = c * 100_000;
                while v.len() < 1 << 20 {
                    v.extend_from_slice(
                        format!("INSERT INTO t VALUES ({i}, 'row {}');\n", i % 977).as_bytes(),
                    );
                    i += 1;
                }
            } else {
                rng.fill_bytes(&mut v);
            }
            v
        })
        .collect()
}

fn pack(c: &mut Criterion) {
    let recipient = SecretKey::generate("bench").unwrap().public();
    let recipients = [recipient];
    let mut group = c.benchmark_group("pack (zstd 3 + OpenPGP)");
    group.sample_size(10);
    for (name, data) in [("random", chunks(false)), ("sql", chunks(true))] {
        let ids: Vec<ChunkId> = data.iter().map(|d| ChunkId::of(d)).collect();
        group.throughput(Throughput::Bytes(data.iter().map(|d| d.len() as u64).sum()));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut builder = PackBuilder::new(3, 17 << 20);
                for (id, d) in ids.iter().zip(&data) {
                    builder.add(*id, d).unwrap();
                }
                builder.seal(&recipients).unwrap().0.size
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pack);
criterion_main!(benches);
