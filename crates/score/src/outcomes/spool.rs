//! The outcome spool: an append-only log of checksummed records, so that
//! outcomes survive a monitor outage and a crash of the scorer.
//!
//! On disk the spool is one directory:
//!
//! - `LOCK`: an advisory lock held by the one process using the spool (the
//!   OS releases it when the process dies, even by `SIGKILL`);
//! - `00000000000000000001.seg`, …: segment files, oldest first. Only the
//!   newest is appended to; a new one is started when it passes the segment
//!   size, and on every open (so a segment a crash may have torn is never
//!   appended to again);
//! - `cursor`: `<segment> <offset>`, the first record the monitor has not
//!   acknowledged, replaced atomically (written to `cursor.tmp`, renamed).
//!   Segments wholly before it are deleted.
//!
//! A record is `len: u32 | crc32: u32 | outcomes: u32 | payload` (little
//! endian; the CRC-32 covers the outcome word and the payload, which the
//! caller encodes). The outcome word's top bit ([`MORE_FLAG`]) says that
//! the next record belongs to the same request: a request's records are
//! written together, in one segment, and either all of them count or none
//! does. Opening the spool checks every record after the cursor: a torn or
//! corrupt tail (a crash mid-write, a lost page) is cut off at the last good
//! record and logged, never a panic, and so are the records of a request
//! whose last record never made it (a crash in the middle of writing it).
//!
//! **Writing** goes through a [`Batch`]: records are staged, written and
//! made visible to the reader only when the batch commits (after `fsync`,
//! when asked for). A failed write or `fsync` truncates the segment back to
//! where the batch started (and, after a failed `fsync`, moves on to a new
//! segment): nothing a reader could have seen is touched, and nothing of
//! the failed batch is ever read. The caller learns of the failure and
//! answers its requests `UNAVAILABLE`.
//!
//! Without a directory the same log lives in memory ([`open`] with `None`):
//! it rides out a monitor outage but not a restart.
//!
//! The spool is bounded: [`SpoolWriter::append`] refuses a record that
//! would take the segments past the maximum size ([`SpoolError::Full`]); the
//! caller counts and logs what it drops.

#![allow(
    clippy::disallowed_types,
    reason = "synchronous code: the state lock is held for a few assignments, never across an await"
)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes before each record's payload: length, checksum, outcome count.
pub const HEADER_BYTES: usize = 12;
/// Set in a record's outcome word when the next record belongs to the
/// same request.
pub const MORE_FLAG: u32 = 1 << 31;
/// Staged bytes of a batch past which they are written out.
const FLUSH_BYTES: usize = 1 << 20;
/// Largest payload a record may declare; anything larger is corruption.
pub const MAX_PAYLOAD_BYTES: u32 = 1 << 30;
/// Bytes read from a segment at a time.
const READ_CHUNK: u64 = 1 << 20;
const SEGMENT_SUFFIX: &str = ".seg";
const CURSOR_FILE: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
const LOCK_FILE: &str = "LOCK";

/// Failures of the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file system operation on the spool failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a verb: `create`, `open`, `write`, ….
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the OS answered.
        #[source]
        source: io::Error,
    },
    /// Another process holds the spool directory's lock.
    #[error("the spool {} is in use by another process", .0.display())]
    Locked(PathBuf),
    /// The record would take the segments past the maximum size.
    #[error(
        "the spool is full: it holds {held} bytes, a {record}-byte record would pass the {max}-byte limit"
    )]
    Full {
        /// Bytes the segments hold, with what the batch staged before.
        held: u64,
        /// Bytes of the refused records, headers included.
        record: u64,
        /// The most the segments may hold.
        max: u64,
    },
    /// The batch is refused because an earlier write of it failed (and was
    /// rolled back).
    #[error("an earlier write of this batch failed; the batch was rolled back")]
    Poisoned,
}

impl SpoolError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// How big the spool may grow and how hard it holds on to what it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Most bytes the segments may hold (acknowledged records included
    /// until their segment is deleted).
    pub max_bytes: u64,
    /// Size past which a new segment is started.
    pub segment_bytes: u64,
    /// `fsync` every append and cursor update (survives a machine crash,
    /// costs a disk flush per group of records).
    pub fsync: bool,
}

impl SpoolOptions {
    /// Segments of a sixteenth of `max_bytes` (between 64 KiB and 64 MiB,
    /// at most a quarter of `max_bytes`), so that acknowledged bytes
    /// waiting for their segment to be deleted stay a small share of the
    /// bound.
    pub fn new(max_bytes: u64, fsync: bool) -> Self {
        Self {
            max_bytes,
            segment_bytes: (max_bytes / 16)
                .clamp(64 << 10, 64 << 20)
                .min(max_bytes / 4)
                .max(1),
            fsync,
        }
    }
}

/// A place in the log: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// The segment's number (its file name).
    pub segment: u64,
    /// Bytes from the segment's start.
    pub offset: u64,
}

/// What opening the spool found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Records not yet acknowledged, written by an earlier process.
    pub records: u64,
    /// Outcomes in those records.
    pub outcomes: u64,
    /// Bytes of torn or corrupt records cut off.
    pub truncated_bytes: u64,
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Outcomes the record holds, as its writer counted them.
    pub outcomes: u64,
    /// The bytes the writer framed (the caller's encoding), checksum
    /// verified.
    pub payload: Vec<u8>,
    /// Where the next record starts: acknowledge this to mark the record
    /// delivered.
    pub end: Position,
}

/// Appends `payload` to `out` as one record holding `outcomes` outcomes,
/// the last of its request.
pub fn frame_into(out: &mut Vec<u8>, outcomes: u32, payload: &[u8]) {
    let start = begin_frame(out);
    out.extend_from_slice(payload);
    end_frame(out, start, outcomes, false);
}

/// Starts a record at the end of `out`: reserves its header and returns
/// where it starts; the payload follows, then [`end_frame`].
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    start
}

/// Completes the record started at `start` (everything after its header is
/// its payload): `outcomes` outcomes (below [`MORE_FLAG`]), and whether
/// the next record belongs to the same request.
pub fn end_frame(out: &mut [u8], start: usize, outcomes: u32, more: bool) {
    let word = (outcomes & !MORE_FLAG) | if more { MORE_FLAG } else { 0 };
    let payload = &out[start + HEADER_BYTES..];
    let len = payload.len() as u32;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&word.to_le_bytes());
    crc.update(payload);
    let crc = crc.finalize();
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&word.to_le_bytes());
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// A whole, intact record of `len` bytes (header included); `more`:
    /// the next record belongs to the same request.
    Whole {
        outcomes: u32,
        more: bool,
        len: usize,
    },
    /// The start of a record of `len` bytes that the buffer cuts short.
    Short { len: usize },
    /// Not a record: a bad length or checksum.
    Corrupt(&'static str),
}

fn parse_frame(buf: &[u8]) -> Frame {
    let Some(header) = buf.get(..HEADER_BYTES) else {
        return Frame::Short { len: HEADER_BYTES };
    };
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (payload_len, crc, outcomes) = (word(0), word(4), word(8));
    if payload_len > MAX_PAYLOAD_BYTES {
        return Frame::Corrupt("record length out of range");
    }
    let len = HEADER_BYTES + payload_len as usize;
    let Some(payload) = buf.get(HEADER_BYTES..len) else {
        return Frame::Short { len };
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&outcomes.to_le_bytes());
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Frame::Corrupt("checksum mismatch");
    }
    Frame::Whole {
        outcomes: outcomes & !MORE_FLAG,
        more: outcomes & MORE_FLAG != 0,
        len,
    }
}

/// Scans whole records from the start of `buf`: returns the length of the
/// valid prefix, its record and outcome counts, and why scanning stopped
/// early (if it did). The valid prefix ends with a request's last record:
/// the records of a request cut short are not part of it.
fn scan(buf: &[u8]) -> (usize, u64, u64, Option<&'static str>) {
    // Counts up to the end of the last whole request.
    let (mut end, mut records, mut outcomes) = (0, 0, 0);
    let (mut at, mut open_records, mut open_outcomes) = (0, 0, 0);
    let stopped = loop {
        if at >= buf.len() {
            break (open_records > 0).then_some("a request's last record is missing");
        }
        match parse_frame(&buf[at..]) {
            Frame::Whole {
                outcomes: n,
                more,
                len,
            } => {
                at += len;
                open_records += 1;
                open_outcomes += u64::from(n);
                if !more {
                    (end, records, outcomes) =
                        (at, records + open_records, outcomes + open_outcomes);
                    (open_records, open_outcomes) = (0, 0);
                }
            }
            Frame::Short { .. } => break Some("torn record"),
            Frame::Corrupt(why) => break Some(why),
        }
    };
    (end, records, outcomes, stopped)
}

/// Where segments live.
#[derive(Debug)]
enum Storage {
    Dir {
        path: PathBuf,
        /// Holds the directory's lock for as long as the spool is open.
        _lock: File,
    },
    Memory,
}

/// What the writer and the reader share.
#[derive(Debug)]
struct Shared {
    storage: Storage,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Committed length of each segment, by id; in memory, also its bytes.
    segments: BTreeMap<u64, Segment>,
    /// Sum of the segments' lengths.
    held: u64,
    /// Outcomes written and not yet acknowledged.
    pending: u64,
}

#[derive(Debug, Default)]
struct Segment {
    len: u64,
    /// The bytes, for a spool in memory.
    bytes: Vec<u8>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves the counters half-updated (every
        // update is a few plain assignments), so a poisoned lock is usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn segment_path(&self, id: u64) -> Option<PathBuf> {
        match &self.storage {
            Storage::Dir { path, .. } => Some(segment_path(path, id)),
            Storage::Memory => None,
        }
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SEGMENT_SUFFIX}"))
}

/// Sizes of the spool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes the segments hold, acknowledged records included until their
    /// segment is deleted.
    pub bytes: u64,
    /// Segment files (or in-memory segments).
    pub segments: u64,
    /// Outcomes written and not yet acknowledged.
    pub pending_outcomes: u64,
}

fn usage(state: &State) -> Usage {
    Usage {
        bytes: state.held,
        segments: state.segments.len() as u64,
        pending_outcomes: state.pending,
    }
}

/// Opens (or creates) the spool in `dir`, or in memory when `dir` is
/// `None`: takes the directory's lock, cuts off any torn tail, and starts
/// a new segment to append to. Blocking: call it off the async threads.
pub fn open(
    dir: Option<&Path>,
    options: SpoolOptions,
) -> Result<(SpoolWriter, SpoolReader, Recovered), SpoolError> {
    open_wrapped(dir, options, Arc::new(|file| Box::new(file)))
}

/// [`open`], with every segment file the writer opens passed through
/// `wrap` first: how tests inject failing writes and syncs.
pub fn open_wrapped(
    dir: Option<&Path>,
    options: SpoolOptions,
    wrap: WrapSegment,
) -> Result<(SpoolWriter, SpoolReader, Recovered), SpoolError> {
    let Some(dir) = dir else {
        let mut state = State::default();
        state.segments.insert(1, Segment::default());
        let shared = Arc::new(Shared {
            storage: Storage::Memory,
            state: Mutex::new(state),
        });
        let start = Position {
            segment: 1,
            offset: 0,
        };
        return Ok((
            SpoolWriter::new(Arc::clone(&shared), 1, None, options, wrap),
            SpoolReader::new(shared, start, options.fsync),
            Recovered::default(),
        ));
    };
    fs::create_dir_all(dir).map_err(SpoolError::io("create", dir))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(SpoolError::io("open", &lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir.to_owned())),
        Err(fs::TryLockError::Error(source)) => {
            return Err(SpoolError::io("lock", &lock_path)(source));
        }
    }
    let _ = fs::remove_file(dir.join(CURSOR_TMP));

    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(SpoolError::io("list", dir))? {
        let entry = entry.map_err(SpoolError::io("list", dir))?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|id| id.parse::<u64>().ok());
        if let Some(id) = id {
            ids.push(id);
        }
    }
    ids.sort_unstable();

    let mut cursor = read_cursor(dir).unwrap_or(Position {
        segment: ids.first().copied().unwrap_or(1),
        offset: 0,
    });
    // Segments wholly before the cursor were delivered: delete leftovers
    // (a crash between writing the cursor and deleting them).
    for &id in ids.iter().filter(|&&id| id < cursor.segment) {
        let path = segment_path(dir, id);
        fs::remove_file(&path).map_err(SpoolError::io("delete", &path))?;
    }
    ids.retain(|&id| id >= cursor.segment);
    if ids.first() != Some(&cursor.segment) {
        // The cursor's segment is gone: resume at the next one there is.
        cursor = Position {
            segment: ids.first().copied().unwrap_or(cursor.segment),
            offset: 0,
        };
    }

    let mut state = State::default();
    let mut recovered = Recovered::default();
    for &id in &ids {
        let path = segment_path(dir, id);
        let bytes = fs::read(&path).map_err(SpoolError::io("read", &path))?;
        let from = if id == cursor.segment {
            (cursor.offset as usize).min(bytes.len())
        } else {
            0
        };
        let (valid, records, outcomes, stopped) = scan(&bytes[from..]);
        let len = (from + valid) as u64;
        if let Some(why) = stopped {
            let cut = bytes.len() as u64 - len;
            tracing::warn!(
                segment = %path.display(),
                offset = len,
                bytes = cut,
                reason = why,
                "outcome spool: cutting off a torn or corrupt tail"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(SpoolError::io("open", &path))?;
            file.set_len(len)
                .map_err(SpoolError::io("truncate", &path))?;
            if options.fsync {
                file.sync_all().map_err(SpoolError::io("sync", &path))?;
            }
            recovered.truncated_bytes += cut;
        }
        if id == cursor.segment && cursor.offset > len {
            cursor.offset = len;
        }
        recovered.records += records;
        recovered.outcomes += outcomes;
        state.held += len;
        state.segments.insert(
            id,
            Segment {
                len,
                bytes: Vec::new(),
            },
        );
    }
    state.pending = recovered.outcomes;

    // Always append to a fresh segment.
    let active = ids.last().map_or(cursor.segment, |last| last + 1);
    let file = create_segment(dir, active, options.fsync)?;
    state.segments.insert(active, Segment::default());

    let shared = Arc::new(Shared {
        storage: Storage::Dir {
            path: dir.to_owned(),
            _lock: lock,
        },
        state: Mutex::new(state),
    });
    let mut reader = SpoolReader::new(Arc::clone(&shared), cursor, options.fsync);
    // Delivered segments before the first pending record go now.
    reader.acknowledge(cursor, 0)?;
    Ok((
        SpoolWriter::new(shared, active, Some(file), options, wrap),
        reader,
        recovered,
    ))
}

fn create_segment(dir: &Path, id: u64, fsync: bool) -> Result<File, SpoolError> {
    let path = segment_path(dir, id);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(SpoolError::io("create", &path))?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Makes a new or renamed entry of `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SpoolError::io("sync", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The acknowledged position stored in `dir`, if it holds a readable one.
fn read_cursor(dir: &Path) -> Option<Position> {
    let path = dir.join(CURSOR_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "outcome spool: cannot read the cursor; replaying from the oldest segment");
            return None;
        }
    };
    let mut words = text.split_whitespace().map(str::parse::<u64>);
    match (words.next(), words.next(), words.next()) {
        (Some(Ok(segment)), Some(Ok(offset)), None) => Some(Position { segment, offset }),
        _ => {
            // Only a machine crash can leave a renamed but empty file; the
            // monitor drops duplicates, so replaying everything is safe.
            tracing::warn!(path = %path.display(), content = %text.trim(), "outcome spool: expected `<segment> <offset>` in the cursor; replaying from the oldest segment");
            None
        }
    }
}

/// A segment file as the writer uses it; a trait so that tests can inject
/// failing writes and syncs ([`open_wrapped`]).
pub trait SegmentFile: Send + std::fmt::Debug {
    /// Writes all of `bytes` at the end of the file.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Flushes the file's data to disk.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl SegmentFile for File {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// Wraps each segment file the writer opens (see [`open_wrapped`]).
pub type WrapSegment = Arc<dyn Fn(File) -> Box<dyn SegmentFile> + Send + Sync>;

/// Appends records; one per spool, owned by the writer task.
pub struct SpoolWriter {
    shared: Arc<Shared>,
    active: u64,
    /// Committed length of the active segment.
    active_len: u64,
    file: Option<Box<dyn SegmentFile>>,
    wrap: WrapSegment,
    options: SpoolOptions,
    /// A failed write could not be undone, or an `fsync` failed (the
    /// kernel may have dropped the pages it could not write): start a new
    /// segment first.
    must_rotate: bool,
    /// Staged bytes of the open batch, kept between batches for reuse.
    staged: Vec<u8>,
}

impl std::fmt::Debug for SpoolWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolWriter")
            .field("active", &self.active)
            .field("active_len", &self.active_len)
            .field("must_rotate", &self.must_rotate)
            .finish_non_exhaustive()
    }
}

impl SpoolWriter {
    fn new(
        shared: Arc<Shared>,
        active: u64,
        file: Option<File>,
        options: SpoolOptions,
        wrap: WrapSegment,
    ) -> Self {
        Self {
            shared,
            active,
            active_len: 0,
            file: file.map(|file| wrap(file)),
            wrap,
            options,
            must_rotate: false,
            staged: Vec::new(),
        }
    }

    /// Appends `frames` (whole records from [`frame_into`], holding
    /// `outcomes` outcomes in all) as one batch; refuses them all when they
    /// would take the spool past its maximum size. Once it returns `Ok` the
    /// bytes are in the OS (and on disk with `fsync`): a crash of the
    /// process loses none of them.
    pub fn append(&mut self, frames: &[u8], outcomes: u64) -> Result<(), SpoolError> {
        let mut batch = self.batch()?;
        batch.stage(outcomes, |out| out.extend_from_slice(frames))?;
        batch.commit()
    }

    /// Opens a batch: records staged in it are written and become visible
    /// to the reader all together when it commits, or not at all. A batch
    /// never spans two segments.
    pub fn batch(&mut self) -> Result<Batch<'_>, SpoolError> {
        if self.must_rotate {
            self.rotate()?;
        }
        let held = self.shared.state().held;
        self.staged.clear();
        Ok(Batch {
            start: self.active_len,
            held,
            flushed: 0,
            outcomes: 0,
            poisoned: false,
            committed: false,
            writer: self,
        })
    }

    fn rotate(&mut self) -> Result<(), SpoolError> {
        let next = self.active + 1;
        if let Storage::Dir { path, .. } = &self.shared.storage {
            let file = create_segment(path, next, self.options.fsync)?;
            self.file = Some((self.wrap)(file));
        }
        self.shared
            .state()
            .segments
            .insert(next, Segment::default());
        self.active = next;
        self.active_len = 0;
        self.must_rotate = false;
        Ok(())
    }

    /// Writes `bytes` after what the active segment holds (committed or
    /// not), in the file or in memory.
    fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        match (&mut self.file, self.shared.segment_path(self.active)) {
            (Some(file), Some(path)) => file.append(bytes).map_err(|source| SpoolError::Io {
                action: "append to",
                path,
                source,
            }),
            _ => {
                let mut state = self.shared.state();
                let segment = state.segments.entry(self.active).or_default();
                segment.bytes.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Cuts the active segment back to `len` bytes; failing that, never
    /// appends to it again.
    fn cut_to(&mut self, len: u64) {
        match &mut self.file {
            Some(file) => {
                if let Err(error) = file.truncate(len) {
                    tracing::error!(%error, segment = self.active, "outcome spool: cannot cut a failed write off its segment; moving to a new segment");
                    self.must_rotate = true;
                }
            }
            None => {
                let mut state = self.shared.state();
                if let Some(segment) = state.segments.get_mut(&self.active) {
                    segment.bytes.truncate(len as usize);
                }
            }
        }
    }

    /// Sizes of the spool now.
    pub fn usage(&self) -> Usage {
        usage(&self.shared.state())
    }

    /// Whether every batch is `fsync`ed before it counts.
    pub fn is_fsync(&self) -> bool {
        self.options.fsync && self.file.is_some()
    }
}

/// A place in an open [`Batch`], to [`Batch::rewind`] to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    bytes: u64,
    outcomes: u64,
}

/// Records written together: invisible to the reader until
/// [`Batch::commit`]; dropped uncommitted, they are cut off again.
#[derive(Debug)]
pub struct Batch<'w> {
    writer: &'w mut SpoolWriter,
    /// Committed length of the segment when the batch opened.
    start: u64,
    /// Bytes the spool held when the batch opened.
    held: u64,
    /// Bytes of the batch already written to the segment (the rest is in
    /// `writer.staged`).
    flushed: u64,
    outcomes: u64,
    poisoned: bool,
    committed: bool,
}

impl Batch<'_> {
    /// Bytes staged or written so far.
    pub fn len(&self) -> u64 {
        self.flushed + self.writer.staged.len() as u64
    }

    /// True when nothing was staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the batch is now.
    pub fn mark(&self) -> Mark {
        Mark {
            bytes: self.len(),
            outcomes: self.outcomes,
        }
    }

    /// Stages records holding `outcomes` outcomes, written into the staging
    /// buffer by `write` (whole records: [`begin_frame`], payload,
    /// [`end_frame`]). Refuses them, leaving the batch as it was, when the
    /// spool would pass its maximum size.
    pub fn stage(
        &mut self,
        outcomes: u64,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), SpoolError> {
        if self.poisoned {
            return Err(SpoolError::Poisoned);
        }
        let mark = self.mark();
        write(&mut self.writer.staged);
        self.outcomes += outcomes;
        let max = self.writer.options.max_bytes;
        if self.held + self.len() > max {
            let record = self.len() - mark.bytes;
            self.rewind(mark)?;
            return Err(SpoolError::Full {
                held: self.held + mark.bytes,
                record,
                max,
            });
        }
        if self.writer.staged.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Drops everything staged or written after `mark`.
    pub fn rewind(&mut self, mark: Mark) -> Result<(), SpoolError> {
        if self.poisoned {
            return Err(SpoolError::Poisoned);
        }
        if mark.bytes >= self.flushed {
            self.writer
                .staged
                .truncate((mark.bytes - self.flushed) as usize);
        } else {
            self.writer.staged.clear();
            self.writer.cut_to(self.start + mark.bytes);
            self.flushed = mark.bytes;
            if self.writer.must_rotate {
                // The cut failed: nothing more may go into this segment.
                self.poisoned = true;
                return Err(SpoolError::Poisoned);
            }
        }
        self.outcomes = mark.outcomes;
        Ok(())
    }

    /// Writes the staged bytes out (still invisible to the reader).
    fn flush(&mut self) -> Result<(), SpoolError> {
        if self.writer.staged.is_empty() {
            return Ok(());
        }
        // Before the batch's first write: start a new segment when this one
        // would pass its size (nothing of the batch is in it yet).
        if self.flushed == 0
            && self.writer.active_len > 0
            && self.writer.active_len + self.writer.staged.len() as u64
                > self.writer.options.segment_bytes
        {
            if let Err(error) = self.writer.rotate() {
                self.poisoned = true;
                self.writer.staged.clear();
                return Err(error);
            }
            self.start = 0;
        }
        let staged = std::mem::take(&mut self.writer.staged);
        let written = self.writer.write(&staged);
        self.writer.staged = staged;
        match written {
            Ok(()) => {
                self.flushed += self.writer.staged.len() as u64;
                self.writer.staged.clear();
                Ok(())
            }
            Err(error) => {
                self.fail();
                Err(error)
            }
        }
    }

    /// Rolls the whole batch back after a failure.
    fn fail(&mut self) {
        self.poisoned = true;
        self.writer.staged.clear();
        // A partial write may have reached the segment: cut it off.
        self.writer.cut_to(self.start);
    }

    /// Writes what is staged, `fsync`s when the spool is durable, and makes
    /// the batch visible to the reader. On any failure nothing of the batch
    /// stays: the segment is cut back to where the batch started.
    pub fn commit(mut self) -> Result<(), SpoolError> {
        if self.poisoned {
            return Err(SpoolError::Poisoned);
        }
        self.flush()?;
        if self.flushed == 0 {
            self.committed = true;
            return Ok(());
        }
        if self.writer.options.fsync
            && let (Some(file), Some(path)) = (
                &mut self.writer.file,
                self.writer.shared.segment_path(self.writer.active),
            )
            && let Err(source) = file.sync_data()
        {
            // The kernel may have dropped the pages it failed to write:
            // cut them off and never write to this segment again.
            self.fail();
            self.writer.must_rotate = true;
            return Err(SpoolError::Io {
                action: "sync",
                path,
                source,
            });
        }
        let len = self.start + self.flushed;
        self.writer.active_len = len;
        let mut state = self.writer.shared.state();
        state.segments.entry(self.writer.active).or_default().len = len;
        state.held += self.flushed;
        state.pending += self.outcomes;
        drop(state);
        self.committed = true;
        Ok(())
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.committed && !self.poisoned && self.flushed > 0 {
            self.writer.cut_to(self.start);
        }
        self.writer.staged.clear();
    }
}

/// Reads records back in order and records what the monitor acknowledged;
/// one per spool, owned by the sender task.
#[derive(Debug)]
pub struct SpoolReader {
    shared: Arc<Shared>,
    /// The first record not acknowledged (what the cursor file holds).
    acked: Position,
    /// The first record not yet read.
    next: Position,
    /// The segment file being read.
    file: Option<(u64, File)>,
    fsync: bool,
}

impl SpoolReader {
    fn new(shared: Arc<Shared>, start: Position, fsync: bool) -> Self {
        Self {
            shared,
            acked: start,
            next: start,
            file: None,
            fsync,
        }
    }

    /// The records written after the read position, in order: at least
    /// one when there is any, then more while they total under
    /// `max_outcomes` outcomes and `max_bytes` bytes. Empty when everything
    /// written has been read. A corrupt record (after [`open`] checked the
    /// spool, only a disk fault makes one) is logged and skipped with the
    /// rest of its segment.
    pub fn read(&mut self, max_outcomes: u64, max_bytes: u64) -> Result<Vec<Record>, SpoolError> {
        let (mut records, mut outcomes, mut bytes) = (Vec::new(), 0, 0);
        while records.is_empty() || (outcomes < max_outcomes && bytes < max_bytes) {
            let (end, following) = {
                let state = self.shared.state();
                let end = state.segments.get(&self.next.segment).map_or(0, |s| s.len);
                let following = state
                    .segments
                    .range(self.next.segment + 1..)
                    .next()
                    .map(|(id, _)| *id);
                (end, following)
            };
            if self.next.offset >= end {
                // A later segment exists only once this one is complete.
                let Some(following) = following else { break };
                self.next = Position {
                    segment: following,
                    offset: 0,
                };
                self.file = None;
                continue;
            }
            let remaining = end - self.next.offset;
            let want = remaining.min(READ_CHUNK.max(max_bytes.saturating_sub(bytes)));
            let mut chunk = self.read_at(self.next, want)?;
            let mut at = 0;
            let mut corrupt = None;
            while at < chunk.len()
                && (records.is_empty() || (outcomes < max_outcomes && bytes < max_bytes))
            {
                match parse_frame(&chunk[at..]) {
                    Frame::Whole {
                        outcomes: n, len, ..
                    } => {
                        at += len;
                        outcomes += u64::from(n);
                        bytes += len as u64;
                        records.push(Record {
                            outcomes: u64::from(n),
                            payload: chunk[at - len + HEADER_BYTES..at].to_vec(),
                            end: Position {
                                segment: self.next.segment,
                                offset: self.next.offset + at as u64,
                            },
                        });
                    }
                    Frame::Short { len } if (at + len) as u64 > remaining => {
                        corrupt = Some("record runs past the end of its segment");
                    }
                    Frame::Short { len } if at == 0 && chunk.len() < len => {
                        // One record larger than the chunk: read it whole.
                        chunk = self.read_at(self.next, len as u64)?;
                        if chunk.len() < len {
                            corrupt = Some("segment shorter than its committed length");
                        }
                    }
                    Frame::Short { .. } => break,
                    Frame::Corrupt(why) => corrupt = Some(why),
                }
                if let Some(reason) = corrupt {
                    tracing::error!(
                        segment = self.next.segment,
                        offset = self.next.offset + at as u64,
                        bytes = remaining - at as u64,
                        reason,
                        "outcome spool: corrupt record; skipping the rest of its segment"
                    );
                    at = remaining as usize;
                    break;
                }
            }
            self.next.offset += at as u64;
        }
        Ok(records)
    }

    fn read_at(&mut self, at: Position, len: u64) -> Result<Vec<u8>, SpoolError> {
        let Some(path) = self.shared.segment_path(at.segment) else {
            let state = self.shared.state();
            let bytes = state
                .segments
                .get(&at.segment)
                .map_or(&[][..], |s| &s.bytes[..]);
            let from = (at.offset as usize).min(bytes.len());
            let to = (from + len as usize).min(bytes.len());
            return Ok(bytes[from..to].to_vec());
        };
        let file = match &mut self.file {
            Some((id, file)) if *id == at.segment => file,
            slot => {
                let file = File::open(&path).map_err(SpoolError::io("open", &path))?;
                &mut slot.insert((at.segment, file)).1
            }
        };
        file.seek(SeekFrom::Start(at.offset))
            .map_err(SpoolError::io("seek", &path))?;
        let mut buf = Vec::with_capacity(len as usize);
        file.take(len)
            .read_to_end(&mut buf)
            .map_err(SpoolError::io("read", &path))?;
        Ok(buf)
    }

    /// Marks everything before `to` delivered (`outcomes` outcomes): stores
    /// the cursor and deletes the segments wholly before it.
    pub fn acknowledge(&mut self, to: Position, outcomes: u64) -> Result<(), SpoolError> {
        {
            let mut state = self.shared.state();
            state.pending = state.pending.saturating_sub(outcomes);
        }
        let to = self.normalize(to);
        if to <= self.acked {
            return Ok(());
        }
        self.acked = to;
        if let Storage::Dir { path, .. } = &self.shared.storage {
            let tmp = path.join(CURSOR_TMP);
            let mut file = File::create(&tmp).map_err(SpoolError::io("create", &tmp))?;
            file.write_all(format!("{} {}\n", to.segment, to.offset).as_bytes())
                .map_err(SpoolError::io("write", &tmp))?;
            if self.fsync {
                file.sync_all().map_err(SpoolError::io("sync", &tmp))?;
            }
            let cursor = path.join(CURSOR_FILE);
            fs::rename(&tmp, &cursor).map_err(SpoolError::io("replace", &cursor))?;
            if self.fsync {
                sync_dir(path)?;
            }
        }
        let done: Vec<u64> = self
            .shared
            .state()
            .segments
            .range(..to.segment)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(path) = self.shared.segment_path(id) {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(SpoolError::Io {
                            action: "delete",
                            path,
                            source,
                        });
                    }
                }
            }
            let mut state = self.shared.state();
            if let Some(segment) = state.segments.remove(&id) {
                state.held -= segment.len;
            }
        }
        Ok(())
    }

    /// The end of a complete segment is the start of the next one: moving
    /// there lets the finished segment be deleted.
    fn normalize(&self, mut at: Position) -> Position {
        let state = self.shared.state();
        while let Some(len) = state.segments.get(&at.segment).map(|s| s.len) {
            let following = state.segments.range(at.segment + 1..).next();
            match following {
                Some((&id, _)) if at.offset >= len => {
                    at = Position {
                        segment: id,
                        offset: 0,
                    };
                }
                _ => break,
            }
        }
        at
    }

    /// Whether every record written has been read.
    pub fn caught_up(&self) -> bool {
        let state = self.shared.state();
        let last = state.segments.iter().next_back();
        last.is_none_or(|(id, segment)| (*id, segment.len) <= (self.next.segment, self.next.offset))
    }

    /// Sizes of the spool now.
    pub fn usage(&self) -> Usage {
        usage(&self.shared.state())
    }

    /// Whether the spool lives on disk (and so outlives the process).
    pub fn is_durable(&self) -> bool {
        matches!(self.shared.storage, Storage::Dir { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcomes: u32, fill: u8, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        frame_into(&mut out, outcomes, &vec![fill; len]);
        out
    }

    fn options() -> SpoolOptions {
        SpoolOptions::new(1 << 20, false)
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn records_come_back_in_order_and_the_cursor_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, mut reader, recovered) = open(Some(dir.path()), options()).unwrap();
        assert_eq!(recovered, Recovered::default());
        writer.append(&record(1, b'a', 10), 1).unwrap();
        let mut two = record(2, b'b', 20);
        two.extend(record(3, b'c', 30));
        writer.append(&two, 5).unwrap();
        assert_eq!(writer.usage().pending_outcomes, 6);

        let records = reader.read(100, 1 << 20).unwrap();
        let payloads: Vec<(u64, Vec<u8>)> = records
            .iter()
            .map(|r| (r.outcomes, r.payload.clone()))
            .collect();
        assert_eq!(
            payloads,
            vec![
                (1, vec![b'a'; 10]),
                (2, vec![b'b'; 20]),
                (3, vec![b'c'; 30])
            ]
        );
        assert!(reader.caught_up());
        // The monitor acknowledged the first two records only.
        reader.acknowledge(records[1].end, 3).unwrap();
        assert_eq!(reader.usage().pending_outcomes, 3);
        drop((writer, reader));

        let (_writer, mut reader, recovered) = open(Some(dir.path()), options()).unwrap();
        assert_eq!(
            recovered,
            Recovered {
                records: 1,
                outcomes: 3,
                truncated_bytes: 0
            }
        );
        let records = reader.read(100, 1 << 20).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].payload, vec![b'c'; 30]);
        assert_eq!(records[0].outcomes, 3);
    }

    #[test]
    fn reads_stop_at_the_outcome_and_byte_limits_but_return_at_least_one_record() {
        let (mut writer, mut reader, _) = open(None, options()).unwrap();
        for i in 0..5 {
            writer.append(&record(10, i, 100), 10).unwrap();
        }
        assert_eq!(reader.read(25, 1 << 20).unwrap().len(), 3);
        assert_eq!(
            reader.read(1, 1).unwrap().len(),
            1,
            "one record over both limits"
        );
        assert_eq!(reader.read(100, 1 << 20).unwrap().len(), 1);
        assert!(reader.read(100, 1 << 20).unwrap().is_empty());
    }

    #[test]
    fn a_torn_tail_is_cut_off_on_open_and_the_spool_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader, _) = open(Some(dir.path()), options()).unwrap();
        writer.append(&record(1, b'a', 10), 1).unwrap();
        writer.append(&record(1, b'b', 10), 1).unwrap();
        drop((writer, reader));
        // A crash in the middle of writing a third record.
        let segment = segments(dir.path()).pop().unwrap();
        let good_len = fs::metadata(&segment).unwrap().len();
        let torn = record(1, b'c', 100);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&torn[..40]).unwrap();
        drop(file);

        let (mut writer, mut reader, recovered) = open(Some(dir.path()), options()).unwrap();
        assert_eq!(
            recovered,
            Recovered {
                records: 2,
                outcomes: 2,
                truncated_bytes: 40
            }
        );
        assert_eq!(fs::metadata(&segment).unwrap().len(), good_len);
        writer.append(&record(1, b'd', 10), 1).unwrap();
        let payloads: Vec<u8> = reader
            .read(100, 1 << 20)
            .unwrap()
            .iter()
            .map(|r| r.payload[0])
            .collect();
        assert_eq!(payloads, b"abd");
    }

    #[test]
    fn a_corrupt_record_ends_its_segment_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader, _) = open(Some(dir.path()), options()).unwrap();
        for fill in [b'a', b'b', b'c'] {
            writer.append(&record(1, fill, 10), 1).unwrap();
        }
        drop((writer, reader));
        let segment = segments(dir.path()).pop().unwrap();
        let mut bytes = fs::read(&segment).unwrap();
        // Flip a payload byte of the second record: its checksum fails.
        bytes[HEADER_BYTES + 10 + HEADER_BYTES + 3] ^= 0xff;
        fs::write(&segment, &bytes).unwrap();

        let (_writer, mut reader, recovered) = open(Some(dir.path()), options()).unwrap();
        assert_eq!(recovered.records, 1);
        assert_eq!(recovered.truncated_bytes, 2 * (HEADER_BYTES as u64 + 10));
        let records = reader.read(100, 1 << 20).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].payload, vec![b'a'; 10]);
    }

    #[test]
    fn garbage_never_panics_the_parser() {
        assert_eq!(parse_frame(&[]), Frame::Short { len: HEADER_BYTES });
        assert_eq!(
            parse_frame(&[0xff; 12]),
            Frame::Corrupt("record length out of range")
        );
        let mut bad = record(1, 0, 4);
        bad[4] ^= 1;
        assert_eq!(parse_frame(&bad), Frame::Corrupt("checksum mismatch"));
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = scan(&junk);
        }
    }

    #[test]
    fn the_size_bound_refuses_records_until_delivered_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let options = SpoolOptions::new(4_000, false);
        assert_eq!(options.segment_bytes, 1_000);
        let (mut writer, mut reader, _) = open(Some(dir.path()), options).unwrap();
        let one = record(1, b'x', 288); // 300 bytes
        let mut written = 0;
        let refused = loop {
            match writer.append(&one, 1) {
                Ok(()) => written += 1,
                Err(error) => break error,
            }
        };
        assert_eq!(written, 13, "13 records of 300 bytes fit in 4 000");
        assert!(
            matches!(
                refused,
                SpoolError::Full {
                    held: 3_900,
                    record: 300,
                    max: 4_000
                }
            ),
            "{refused:?}"
        );
        assert_eq!(writer.usage().bytes, 3_900);
        assert_eq!(writer.usage().segments, 5);

        // Deliver everything: the complete segments go, room comes back.
        let records = reader.read(100, 1 << 20).unwrap();
        assert_eq!(records.len(), 13);
        reader.acknowledge(records[12].end, 13).unwrap();
        assert_eq!(segments(dir.path()).len(), 1);
        assert_eq!(reader.usage().bytes, 300, "the active segment stays");
        assert_eq!(reader.usage().pending_outcomes, 0);
        writer.append(&one, 1).unwrap();
    }

    #[test]
    fn a_spool_directory_is_used_by_one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let _open = open(Some(dir.path()), options()).unwrap();
        assert!(matches!(
            open(Some(dir.path()), options()),
            Err(SpoolError::Locked(_))
        ));
    }

    #[test]
    fn an_unreadable_cursor_replays_from_the_oldest_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, mut reader, _) = open(Some(dir.path()), options()).unwrap();
        writer.append(&record(1, b'a', 10), 1).unwrap();
        writer.append(&record(1, b'b', 10), 1).unwrap();
        let records = reader.read(100, 1 << 20).unwrap();
        reader.acknowledge(records[0].end, 1).unwrap();
        drop((writer, reader));
        fs::write(dir.path().join(CURSOR_FILE), "").unwrap();
        let (_writer, _reader, recovered) = open(Some(dir.path()), options()).unwrap();
        assert_eq!(recovered.records, 2, "at least once: both records again");
    }
}
