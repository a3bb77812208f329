//! Append-only block files `blocks/NNNNN.dat`.
//!
//! A record is `magic (4) ‖ len (u32 LE) ‖ checksum (8) ‖ payload (len bytes)`, the checksum
//! being the first 8 bytes of SHA-256 of the payload and the payload a block's canonical
//! encoding. Records are appended and fsynced before the sled batch that refers to them, so sled
//! never points at bytes that were not on disk (unless the disk lied). A new file is started when
//! the current one would grow past `max_file_bytes` (128 MiB).
//!
//! Opening checks the whole last file. A damaged record that runs to the end of the file (a write
//! torn by a crash) is cut off with a warning; a damaged record followed by more data, or a
//! damaged record the store had committed while the file is still as long as committed, is
//! corruption and a clear error. Earlier files are checked record by record when read.

use super::StoreError;
use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tracing::warn;
use wattle_ledger::codec::MAX_DECODE_BYTES;

pub const MAGIC: [u8; 4] = *b"WBLK";
pub const HEADER_LEN: u64 = 16;
pub const MAX_FILE_BYTES: u64 = 128 * 1024 * 1024;
/// No block encoding is longer than the decoder accepts.
pub const MAX_RECORD_BYTES: usize = MAX_DECODE_BYTES;

/// A position in the block files: file number and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Encode, Decode)]
pub struct FilePos {
    pub file: u32,
    pub offset: u64,
}

/// Where one record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLoc {
    pub file: u32,
    pub offset: u64,
    /// Payload length.
    pub len: u32,
}

impl RecordLoc {
    /// The position just past the record.
    pub fn end(&self) -> FilePos {
        FilePos {
            file: self.file,
            offset: self.offset + HEADER_LEN + u64::from(self.len),
        }
    }
}

pub fn file_name(number: u32) -> String {
    format!("{number:05}.dat")
}

pub fn checksum(payload: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// What is wrong with a record.
#[derive(Debug)]
enum Damage {
    ShortHeader,
    BadMagic,
    BadLength(u32),
    ShortPayload(u32),
    BadChecksum(u32),
}

impl Damage {
    fn describe(&self) -> String {
        match self {
            Damage::ShortHeader => "the record header is cut short".into(),
            Damage::BadMagic => "bad magic bytes".into(),
            Damage::BadLength(len) => format!("impossible record length {len}"),
            Damage::ShortPayload(len) => format!("the {len}-byte payload is cut short"),
            Damage::BadChecksum(len) => format!("checksum mismatch over {len} payload bytes"),
        }
    }

    /// The payload length the header claims, when the magic was right.
    fn claimed_len(&self) -> Option<u32> {
        match self {
            Damage::BadLength(len) | Damage::ShortPayload(len) | Damage::BadChecksum(len) => {
                Some(*len)
            }
            Damage::ShortHeader | Damage::BadMagic => None,
        }
    }
}

/// Reads one record at the reader's position. `Ok(None)` at a clean end of file.
fn read_record<R: Read>(reader: &mut R) -> Result<Option<Result<Vec<u8>, Damage>>, std::io::Error> {
    let mut header = [0u8; HEADER_LEN as usize];
    let got = read_up_to(reader, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < header.len() {
        return Ok(Some(Err(Damage::ShortHeader)));
    }
    if header[..4] != MAGIC {
        return Ok(Some(Err(Damage::BadMagic)));
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len as usize > MAX_RECORD_BYTES {
        return Ok(Some(Err(Damage::BadLength(len))));
    }
    let mut payload = vec![0u8; len as usize];
    if read_up_to(reader, &mut payload)? < payload.len() {
        return Ok(Some(Err(Damage::ShortPayload(len))));
    }
    if checksum(&payload) != header[8..16] {
        return Ok(Some(Err(Damage::BadChecksum(len))));
    }
    Ok(Some(Ok(payload)))
}

/// Fills `buf` as far as the input goes; returns how many bytes were read.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, std::io::Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the payload of the record at `loc`, checking its header and checksum.
pub fn read_payload(dir: &Path, loc: &RecordLoc) -> Result<Vec<u8>, StoreError> {
    let path = dir.join(file_name(loc.file));
    let mut file = File::open(&path).map_err(io_error("open", &path))?;
    file.seek(SeekFrom::Start(loc.offset))
        .map_err(io_error("seek", &path))?;
    let corrupt = |why: String| StoreError::CorruptRecord {
        path: path.clone(),
        offset: loc.offset,
        why,
    };
    let mut reader = BufReader::new(file);
    match read_record(&mut reader).map_err(io_error("read", &path))? {
        None => Err(corrupt("the record lies past the end of the file".into())),
        Some(Err(damage)) => Err(corrupt(damage.describe())),
        Some(Ok(payload)) if payload.len() != loc.len as usize => Err(corrupt(format!(
            "the record holds {} bytes, the index says {}",
            payload.len(),
            loc.len
        ))),
        Some(Ok(payload)) => Ok(payload),
    }
}

/// Every record of the block files in `dir`, in file and offset order (what a rebuild of the
/// derived state replays). Ends at the first damaged record (`Some(Err(..))` describes it, then
/// `None`): what follows a damaged record cannot be trusted to be in order.
pub struct Records {
    dir: PathBuf,
    numbers: std::vec::IntoIter<u32>,
    current: Option<(PathBuf, u64, BufReader<File>)>,
    done: bool,
}

impl Records {
    /// The records of the block files in `dir` (none if it has no files).
    pub fn open(dir: &Path) -> Result<Records, StoreError> {
        Ok(Records {
            dir: dir.to_path_buf(),
            numbers: file_numbers(dir)?.into_iter(),
            current: None,
            done: false,
        })
    }
}

impl Iterator for Records {
    type Item = Result<Vec<u8>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some((path, offset, reader)) = &mut self.current else {
                let number = self.numbers.next()?;
                let path = self.dir.join(file_name(number));
                match File::open(&path) {
                    Ok(file) => {
                        self.current = Some((path, 0, BufReader::with_capacity(1 << 20, file)))
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(io_error("open", &path)(e)));
                    }
                }
                continue;
            };
            match read_record(reader) {
                Ok(None) => self.current = None,
                Ok(Some(Ok(payload))) => {
                    *offset += HEADER_LEN + payload.len() as u64;
                    return Some(Ok(payload));
                }
                Ok(Some(Err(damage))) => {
                    self.done = true;
                    return Some(Err(StoreError::CorruptRecord {
                        path: path.clone(),
                        offset: *offset,
                        why: damage.describe(),
                    }));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(io_error("read", path)(e)));
                }
            }
        }
        None
    }
}

/// The numbers of the block files in `dir`, ascending.
fn file_numbers(dir: &Path) -> Result<Vec<u32>, StoreError> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".dat")) else {
            continue;
        };
        if stem.len() >= 5
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = stem.parse::<u32>()
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync directory", dir))
}

/// The writer of the block files (one per store, behind the store's write lock).
pub struct BlockFiles {
    dir: PathBuf,
    file: File,
    number: u32,
    len: u64,
    max_file_bytes: u64,
    /// A write failed: the file end is unknown, refuse further appends.
    broken: bool,
}

impl BlockFiles {
    /// Opens (creating if needed) the block files in `dir`, checks the last file and cuts off a
    /// torn tail. `committed` is the end of the last record sled refers to. Returns the writer
    /// and the end of the valid data, which is before `committed` only if the disk lost
    /// committed bytes (the store then rolls back the blocks it lost).
    pub fn open(
        dir: &Path,
        committed: Option<FilePos>,
        max_file_bytes: u64,
    ) -> Result<(BlockFiles, FilePos), StoreError> {
        fs::create_dir_all(dir).map_err(io_error("create", dir))?;
        let number = file_numbers(dir)?.last().copied().unwrap_or(0);
        let path = dir.join(file_name(number));
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open", &path))?;
        if !existed {
            sync_dir(dir)?;
        }
        let committed_here = match committed {
            Some(c) if c.file == number => c.offset,
            Some(c) if c.file > number => u64::MAX,
            _ => 0,
        };
        let len = check_last_file(&mut file, &path, committed_here)?;
        file.seek(SeekFrom::Start(len))
            .map_err(io_error("seek", &path))?;
        let files = BlockFiles {
            dir: dir.to_path_buf(),
            file,
            number,
            len,
            max_file_bytes,
            broken: false,
        };
        let end = files.end();
        Ok((files, end))
    }

    /// The position the next record will be written at (in the current file).
    pub fn end(&self) -> FilePos {
        FilePos {
            file: self.number,
            offset: self.len,
        }
    }

    /// Appends one record (not yet synced: call `sync` before referring to it).
    pub fn append(&mut self, payload: &[u8]) -> Result<RecordLoc, StoreError> {
        if self.broken {
            return Err(StoreError::Failed);
        }
        if payload.len() > MAX_RECORD_BYTES {
            return Err(StoreError::RecordTooLarge(payload.len()));
        }
        let len = payload.len() as u32;
        let record_len = HEADER_LEN + u64::from(len);
        if self.len > 0 && self.len + record_len > self.max_file_bytes {
            self.roll()?;
        }
        let mut record = Vec::with_capacity(record_len as usize);
        record.extend_from_slice(&MAGIC);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&checksum(payload));
        record.extend_from_slice(payload);
        let path = self.path();
        if let Err(e) = self.file.write_all(&record) {
            self.broken = true;
            return Err(io_error("append to", &path)(e));
        }
        let loc = RecordLoc {
            file: self.number,
            offset: self.len,
            len,
        };
        self.len += record_len;
        Ok(loc)
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        let path = self.path();
        self.file.sync_data().map_err(|e| {
            self.broken = true;
            io_error("fsync", &path)(e)
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join(file_name(self.number))
    }

    /// Closes the current file (synced) and starts the next one.
    fn roll(&mut self) -> Result<(), StoreError> {
        self.sync()?;
        let number = self.number + 1;
        let path = self.dir.join(file_name(number));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                self.broken = true;
                io_error("create", &path)(e)
            })?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.number = number;
        self.len = 0;
        Ok(())
    }
}

/// Reads every record of the last file; returns the length of its valid part, cutting off a
/// torn tail (see the module doc). `committed` is how far sled refers into this file.
fn check_last_file(file: &mut File, path: &Path, committed: u64) -> Result<u64, StoreError> {
    let file_len = file.metadata().map_err(io_error("stat", path))?.len();
    file.seek(SeekFrom::Start(0))
        .map_err(io_error("seek", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, &*file);
    let mut offset = 0u64;
    let damage = loop {
        match read_record(&mut reader).map_err(io_error("read", path))? {
            None => return Ok(offset),
            Some(Ok(payload)) => offset += HEADER_LEN + payload.len() as u64,
            Some(Err(damage)) => break damage,
        }
    };
    let rest_is_zero = rest_is_zero(file, path, offset)?;
    let runs_to_end = damage
        .claimed_len()
        .is_none_or(|len| offset + HEADER_LEN + u64::from(len) >= file_len)
        && !matches!(damage, Damage::BadMagic);
    let corrupt = |why: String| StoreError::CorruptRecord {
        path: path.to_path_buf(),
        offset,
        why,
    };
    if !(rest_is_zero || runs_to_end) {
        return Err(corrupt(format!(
            "{} (more data follows)",
            damage.describe()
        )));
    }
    if offset < committed && file_len >= committed && !rest_is_zero {
        return Err(corrupt(format!(
            "{} in a record the store had committed",
            damage.describe()
        )));
    }
    warn!(
        file = %path.display(),
        offset,
        cut = file_len - offset,
        reason = %damage.describe(),
        "cutting off a torn block record at the end of the block file"
    );
    file.set_len(offset).map_err(io_error("truncate", path))?;
    file.sync_all().map_err(io_error("fsync", path))?;
    Ok(offset)
}

fn rest_is_zero(file: &mut File, path: &Path, offset: u64) -> Result<bool, StoreError> {
    file.seek(SeekFrom::Start(offset))
        .map_err(io_error("seek", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, &*file);
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = read_up_to(&mut reader, &mut buf).map_err(io_error("read", path))?;
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        if n < buf.len() {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; 100 + i]).collect()
    }

    fn write_all(dir: &Path, max: u64, data: &[Vec<u8>]) -> Vec<RecordLoc> {
        let (mut files, _) = BlockFiles::open(dir, None, max).unwrap();
        let locs = data.iter().map(|p| files.append(p).unwrap()).collect();
        files.sync().unwrap();
        locs
    }

    #[test]
    fn records_round_trip_and_files_roll() {
        let dir = tempfile::tempdir().unwrap();
        let data = payloads(10);
        let locs = write_all(dir.path(), 500, &data);
        assert!(locs.iter().any(|l| l.file > 0), "small limit rolls files");
        assert!(dir.path().join("00001.dat").exists());
        for (loc, p) in locs.iter().zip(&data) {
            assert_eq!(&read_payload(dir.path(), loc).unwrap(), p);
        }
        let (files, end) = BlockFiles::open(dir.path(), Some(locs[9].end()), 500).unwrap();
        assert_eq!(end, locs[9].end());
        assert_eq!(files.end(), end);
    }

    #[test]
    fn uncommitted_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let locs = write_all(dir.path(), MAX_FILE_BYTES, &payloads(3));
        let path = dir.path().join(file_name(0));
        let full = fs::metadata(&path).unwrap().len();
        // The third record was never committed; it is torn in its payload.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(full - 5)
            .unwrap();
        let (_, end) = BlockFiles::open(dir.path(), Some(locs[1].end()), MAX_FILE_BYTES).unwrap();
        assert_eq!(end, locs[1].end());
        assert_eq!(fs::metadata(&path).unwrap().len(), locs[1].end().offset);
    }

    #[test]
    fn zero_filled_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let locs = write_all(dir.path(), MAX_FILE_BYTES, &payloads(2));
        let path = dir.path().join(file_name(0));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        let (_, end) = BlockFiles::open(dir.path(), Some(locs[1].end()), MAX_FILE_BYTES).unwrap();
        assert_eq!(end, locs[1].end());
    }

    #[test]
    fn damage_followed_by_data_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let locs = write_all(dir.path(), MAX_FILE_BYTES, &payloads(3));
        let path = dir.path().join(file_name(0));
        let mut bytes = fs::read(&path).unwrap();
        bytes[locs[1].offset as usize + 20] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let err = BlockFiles::open(dir.path(), Some(locs[2].end()), MAX_FILE_BYTES)
            .err()
            .unwrap();
        assert!(
            matches!(err, StoreError::CorruptRecord { offset, .. } if offset == locs[1].offset),
            "{err}"
        );
        // Reading the damaged record directly says so too.
        assert!(matches!(
            read_payload(dir.path(), &locs[1]),
            Err(StoreError::CorruptRecord { .. })
        ));
    }

    #[test]
    fn damaged_committed_last_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let locs = write_all(dir.path(), MAX_FILE_BYTES, &payloads(2));
        let path = dir.path().join(file_name(0));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            BlockFiles::open(dir.path(), Some(locs[1].end()), MAX_FILE_BYTES),
            Err(StoreError::CorruptRecord { .. })
        ));
        // Had it not been committed, it would be a torn tail.
        let (_, end) = BlockFiles::open(dir.path(), Some(locs[0].end()), MAX_FILE_BYTES).unwrap();
        assert_eq!(end, locs[0].end());
    }
}
