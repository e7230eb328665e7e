//! Content-defined chunking of file data (FastCDC), fixed-size chunking of disk images, and the
//! zero-run test that makes holes free.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    pub algorithm: String,
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

// `algorithm` is a String in the stored form; these constants are what we write.
pub const FASTCDC_2020: &str = "fastcdc-2020";
/// Cuts every `avg` bytes (`min` = `avg` = `max`).
pub const FIXED: &str = "fixed";

impl ChunkerParams {
    pub fn default_params() -> (u32, u32, u32) {
        (256 * 1024, 1024 * 1024, 4 * 1024 * 1024)
    }

    /// Chunking for database dumps and copies (see `StreamSource::chunker`): 8 KiB on
    /// average. Measured with `benches/db_dedup.sh` (a 204 MB pgbench dump, 1000 transactions
    /// between dumps): what deduplication left to store was 8% of each dump at 4 KiB, 14% at
    /// 8 KiB, 26% at 16 KiB and all of it at 1 MiB; smaller chunks cost more tree and index
    /// per dump (about 75 bytes of tree per chunk), and 8 KiB added the fewest stored bytes.
    pub fn for_dumps() -> ChunkerParams {
        ChunkerParams {
            algorithm: FASTCDC_2020.into(),
            min: 2 * 1024,
            avg: 8 * 1024,
            max: 32 * 1024,
        }
    }

    /// Chunking for disk images: fixed 1 MiB pieces. A guest writes its disk in aligned blocks,
    /// so what changed between two cold backups lands in the same pieces at the same offsets,
    /// and a run of zeros (free space, a sparse image) is a zero chunk, stored as nothing.
    pub fn for_disk_images() -> ChunkerParams {
        ChunkerParams {
            algorithm: FIXED.into(),
            min: 1024 * 1024,
            avg: 1024 * 1024,
            max: 1024 * 1024,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.algorithm == FIXED {
            return if self.min == self.avg
                && self.avg == self.max
                && (4096..=fastcdc::v2020::MAXIMUM_MAX).contains(&self.avg)
            {
                Ok(())
            } else {
                Err(format!(
                    "fixed chunks of min {} avg {} max {} bytes: all three must be one size \
                     between 4 KiB and {} bytes",
                    self.min,
                    self.avg,
                    self.max,
                    fastcdc::v2020::MAXIMUM_MAX
                ))
            };
        }
        if self.algorithm != FASTCDC_2020 {
            return Err(format!("unknown chunking algorithm '{}'", self.algorithm));
        }
        let ok = self.min >= fastcdc::v2020::MINIMUM_MIN
            && self.max <= fastcdc::v2020::MAXIMUM_MAX
            && self.avg >= fastcdc::v2020::AVERAGE_MIN
            && self.avg <= fastcdc::v2020::AVERAGE_MAX
            && self.min <= self.avg
            && self.avg <= self.max;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "chunk sizes min {} avg {} max {} are out of range",
                self.min, self.avg, self.max
            ))
        }
    }

    /// Chunks a stream, calling `each` for every chunk in order.
    pub fn chunk_stream<R: std::io::Read>(
        &self,
        reader: R,
        mut each: impl FnMut(Vec<u8>) -> Result<(), super::Error>,
    ) -> Result<(), super::Error> {
        if self.algorithm == FIXED {
            return fixed_chunks(reader, self.avg as usize, each);
        }
        let chunker = fastcdc::v2020::StreamCDC::new(reader, self.min, self.avg, self.max);
        for chunk in chunker {
            let chunk = chunk.map_err(|e| match e {
                fastcdc::v2020::Error::IoError(io) => super::Error::Source(io.to_string()),
                other => super::Error::Source(other.to_string()),
            })?;
            each(chunk.data)?;
        }
        Ok(())
    }

    /// Chunks bytes already in memory (the tree).
    pub fn chunk_slice<'a>(&self, data: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        fastcdc::v2020::FastCDC::new(data, self.min, self.avg, self.max)
            .map(move |c| &data[c.offset..c.offset + c.length])
    }
}

/// Cuts a stream into pieces of `size` bytes (the last may be shorter), one in memory at a time.
fn fixed_chunks<R: std::io::Read>(
    mut reader: R,
    size: usize,
    mut each: impl FnMut(Vec<u8>) -> Result<(), super::Error>,
) -> Result<(), super::Error> {
    use std::io::Read as _;
    loop {
        let mut piece = Vec::with_capacity(size);
        let read = (&mut reader)
            .take(size as u64)
            .read_to_end(&mut piece)
            .map_err(|e| super::Error::Source(e.to_string()))?;
        if read == 0 {
            return Ok(());
        }
        each(piece)?;
        if read < size {
            return Ok(());
        }
    }
}

pub fn is_zero(data: &[u8]) -> bool {
    // Compare in 16-byte steps; the compiler vectorises this.
    let mut words = data.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])) == 0)
        && words.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dump_chunks_are_valid_and_small() {
        let dumps = super::ChunkerParams::for_dumps();
        assert_eq!(dumps.validate(), Ok(()));
        // A change in the middle of a dump costs the chunks around it, not the whole dump.
        let mut data: Vec<u8> = (0..400_000u32)
            .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
            .collect();
        let ids = |d: &[u8]| {
            dumps
                .chunk_slice(d)
                .map(super::super::ids::ChunkId::of)
                .collect::<std::collections::HashSet<_>>()
        };
        let before = ids(&data);
        data[800_000] ^= 0xff;
        let after = ids(&data);
        let new = after.difference(&before).count();
        assert!(
            (1..=3).contains(&new),
            "{new} of {} chunks changed",
            after.len()
        );
        // 1.6 MB in chunks of about 8 KiB.
        assert!((100..=400).contains(&after.len()), "{} chunks", after.len());
    }

    #[test]
    fn fixed_chunks_cut_every_mebibyte() {
        let fixed = super::ChunkerParams::for_disk_images();
        assert_eq!(fixed.validate(), Ok(()));
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
        let mut sizes = Vec::new();
        let mut back = Vec::new();
        fixed
            .chunk_stream(&data[..], |c| {
                sizes.push(c.len());
                back.extend_from_slice(&c);
                Ok(())
            })
            .unwrap();
        assert_eq!(sizes, [1 << 20, 1 << 20, 2_500_000 - (2 << 20)]);
        assert_eq!(back, data);
        let mut none = 0;
        fixed
            .chunk_stream(&[][..], |_| {
                none += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(none, 0);
        let odd = super::ChunkerParams {
            max: 2 << 20,
            ..fixed
        };
        assert!(odd.validate().is_err());
    }

    #[test]
    fn zero_detection() {
        assert!(super::is_zero(&[0u8; 1000]));
        let mut v = vec![0u8; 1000];
        v[999] = 1;
        assert!(!super::is_zero(&v));
        v[999] = 0;
        v[3] = 1;
        assert!(!super::is_zero(&v));
        assert!(super::is_zero(&[]));
    }
}
