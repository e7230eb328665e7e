//! The disk images of a VM that is off, as streams: each image is stored byte for byte (a
//! qcow2 file as the file it is, a raw image or block device as its bytes) in fixed 1 MiB
//! chunks, so unchanged regions of a disk cost nothing in the next cold backup and zero
//! regions cost nothing at all. One chunk is in memory at a time.

use crate::hypervisor::Disk;
use crate::repo::backup::StreamSource;
use std::collections::BTreeMap;
use std::io::Read;

pub struct DiskImages {
    /// The VM, for the manifest (`vm:acme-web`).
    name: String,
    disks: Vec<Disk>,
    details: BTreeMap<String, String>,
}

impl DiskImages {
    pub fn new(name: &str, disks: Vec<Disk>) -> DiskImages {
        DiskImages {
            name: name.to_string(),
            disks,
            details: BTreeMap::new(),
        }
    }

    /// The file name of a disk in the snapshot: `DEVICE-FILENAME` (`virtio0-web.qcow2`), with
    /// anything but letters, digits, `.`, `_` and `-` made `_`.
    pub fn stored_name(disk: &Disk) -> String {
        let file = disk
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "disk".into());
        format!("{}-{file}", disk.device)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .trim_start_matches(['_', '.'])
            .to_string()
    }
}

impl StreamSource for DiskImages {
    fn describe(&self) -> Vec<String> {
        vec![format!("vm:{}", self.name)]
    }

    fn produce(
        &mut self,
        each: &mut dyn FnMut(&str, &mut dyn Read) -> crate::repo::Result<()>,
    ) -> crate::repo::Result<()> {
        self.details.insert("kind".into(), "vm".into());
        for disk in &self.disks {
            let name = Self::stored_name(disk);
            let mut file = std::fs::File::open(&disk.path).map_err(|e| {
                crate::repo::Error::Source(format!(
                    "cannot open disk {} ({}): {e}",
                    disk.device,
                    disk.path.display()
                ))
            })?;
            self.details.insert(
                format!("disk.{name}"),
                format!("{} {} ({})", disk.device, disk.path.display(), disk.format),
            );
            each(&name, &mut file)?;
        }
        Ok(())
    }

    fn details(&self) -> BTreeMap<String, String> {
        self.details.clone()
    }

    fn chunker(&self) -> Option<crate::repo::chunker::ChunkerParams> {
        Some(crate::repo::chunker::ChunkerParams::for_disk_images())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_plain_file_names() {
        let disk = |device: &str, path: &str| Disk {
            device: device.into(),
            path: path.into(),
            format: "raw".into(),
        };
        assert_eq!(
            DiskImages::stored_name(&disk("virtio0", "/vm/web.qcow2")),
            "virtio0-web.qcow2"
        );
        assert_eq!(
            DiskImages::stored_name(&disk("/machine/peripheral/d", "/dev/vg0/web data")),
            "machine_peripheral_d-web_data"
        );
    }
}
