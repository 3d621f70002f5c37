//! The state of the power-cut filesystem, without FUSE: what every inode holds now (*live*)
//! and what a disk would still hold after a power loss (*durable*), and the cut that throws
//! the difference away. Pure: no I/O but [`Model::load`] and [`Model::write_tree`], so the
//! rules are unit-tested without a mount.
//!
//! **The durability rules** (strict POSIX, stricter than ext4 in one place, on purpose):
//!
//! - A file's writes, truncations and `fallocate`s are kept, in order, as *pending* file ops
//!   until an `fsync` or `fdatasync` of that file, which applies them to its durable content.
//!   `fdatasync` promotes the size too (as ext4 does for the size needed to read the data);
//!   timestamps and modes are not modelled.
//! - A directory's entries (create, mkdir, unlink, rmdir, rename) are pending directory ops
//!   until an `fsync` of that directory. fsyncing a file never makes its name durable (ext4
//!   in ordered mode often would, as a side effect of its journal; a program must not count
//!   on it). A rename inside one directory is one op, atomic: after a cut the directory holds
//!   the old name or the new, never neither. A rename across directories is an unlink in one
//!   and a link in the other, each durable with its own directory's fsync.
//! - A cut ([`CutMode`]) drops all pending ops, or keeps a random prefix of each inode's
//!   pending ops (disks reorder across files, so prefixes are drawn per inode), optionally
//!   followed by a torn part of the next write: its first sectors ([`SECTOR_BYTES`]), so a
//!   4 KiB page can be half old, half new. Then the live state is set to the durable state,
//!   inodes no durable directory entry reaches are dropped, and every open handle dies.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// Granularity of content storage; pages never written read as zeros and take no memory.
pub const PAGE_BYTES: u64 = 4096;
/// Granularity at which a [`CutMode::TornPage`] cut tears a write: a disk sector.
pub const SECTOR_BYTES: u64 = 512;
/// Inode number of the root directory (FUSE's).
pub const ROOT_INO: u64 = 1;

/// What a power cut keeps of the pending (unsynced) state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// Nothing that was not synced survives.
    DropAllPending,
    /// Of each inode's pending ops, a random prefix survives (possibly none, possibly all).
    KeepRandomPrefix {
        /// Seed of the draw; the same seed over the same history cuts the same way.
        seed: u64,
    },
    /// Of each inode with pending ops, a random proper prefix survives, followed by the first
    /// sectors of the next op if it is a write that spans a sector boundary: a torn write.
    TornPage {
        /// Seed of the draw.
        seed: u64,
    },
}

/// What a cut threw away, so a test can tell a cut that dropped nothing from one that did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Pending file ops (writes, truncations, allocations) that were dropped.
    pub file_ops_dropped: u64,
    /// Bytes written by dropped file writes (a torn write counts its lost part).
    pub bytes_dropped: u64,
    /// Pending file ops that survived the cut (a prefix was kept).
    pub file_ops_kept: u64,
    /// Writes of which only the first sectors survived.
    pub writes_torn: u64,
    /// Pending directory ops (entries created, removed, renamed) that were dropped.
    pub dir_ops_dropped: u64,
    /// Pending directory ops that survived.
    pub dir_ops_kept: u64,
    /// Inodes no durable entry reached any more (created and never linked durably).
    pub inodes_dropped: u64,
}

/// The syncs the filesystem has served, for tests that check a program syncs at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// fsync/fdatasync of files.
    pub file_syncs: u64,
    /// fsync of directories.
    pub dir_syncs: u64,
}

/// File content: a size and the non-zero pages below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    size_bytes: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl Content {
    /// The file size.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Pages that hold data (for `st_blocks`).
    pub fn allocated_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Up to `len` bytes from `offset`, short at the end of the file.
    pub fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        let end = offset.saturating_add(len).min(self.size_bytes);
        if offset >= end {
            return Vec::new();
        }
        let mut out = vec![0u8; (end - offset) as usize];
        for (index, page) in self
            .pages
            .range(offset / PAGE_BYTES..=(end - 1) / PAGE_BYTES)
        {
            let page_start = index * PAGE_BYTES;
            let from = offset.max(page_start);
            let to = end.min(page_start + PAGE_BYTES);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        }
        out
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let index = pos / PAGE_BYTES;
            let in_page = (pos % PAGE_BYTES) as usize;
            let n = rest.len().min(PAGE_BYTES as usize - in_page);
            let page = self
                .pages
                .entry(index)
                .or_insert_with(|| vec![0u8; PAGE_BYTES as usize].into_boxed_slice());
            page[in_page..in_page + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            pos += n as u64;
        }
        self.size_bytes = self.size_bytes.max(offset + data.len() as u64);
    }

    /// Makes `[offset, offset + len)` read as zeros, within the current size.
    fn zero(&mut self, offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(self.size_bytes);
        if offset >= end {
            return;
        }
        let indexes: Vec<u64> = self
            .pages
            .range(offset / PAGE_BYTES..=(end - 1) / PAGE_BYTES)
            .map(|(index, _)| *index)
            .collect();
        for index in indexes {
            let page_start = index * PAGE_BYTES;
            let from = offset.max(page_start);
            let to = end.min(page_start + PAGE_BYTES);
            if from == page_start && to == page_start + PAGE_BYTES {
                self.pages.remove(&index);
            } else if let Some(page) = self.pages.get_mut(&index) {
                page[(from - page_start) as usize..(to - page_start) as usize].fill(0);
            }
        }
    }

    fn set_size(&mut self, size_bytes: u64) {
        if size_bytes < self.size_bytes {
            // Zero what is cut off, so a later extension reads zeros there.
            self.zero(size_bytes, self.size_bytes - size_bytes);
            let first_gone = size_bytes.div_ceil(PAGE_BYTES);
            self.pages.retain(|index, _| *index < first_gone);
        }
        self.size_bytes = size_bytes;
    }
}

/// One change to a file's content, pending until the file is synced.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileOp {
    Write { offset: u64, data: Vec<u8> },
    Zero { offset: u64, len: u64 },
    SetSize { size_bytes: u64 },
}

impl FileOp {
    fn apply(&self, content: &mut Content) {
        match self {
            FileOp::Write { offset, data } => content.write(*offset, data),
            FileOp::Zero { offset, len } => content.zero(*offset, *len),
            FileOp::SetSize { size_bytes } => content.set_size(*size_bytes),
        }
    }

    fn data_bytes(&self) -> u64 {
        match self {
            FileOp::Write { data, .. } => data.len() as u64,
            _ => 0,
        }
    }

    /// The first sectors of a write, cut at a sector boundary of the file strictly inside it;
    /// `None` when it has no such boundary (it cannot tear) or is not a write.
    fn torn(&self, rng: &mut SplitMix64) -> Option<FileOp> {
        let FileOp::Write { offset, data } = self else {
            return None;
        };
        let end = offset + data.len() as u64;
        let first_boundary = (offset / SECTOR_BYTES + 1) * SECTOR_BYTES;
        if first_boundary >= end {
            return None;
        }
        let boundaries = (end - 1 - first_boundary) / SECTOR_BYTES + 1;
        let cut_at = first_boundary + rng.below(boundaries) * SECTOR_BYTES;
        Some(FileOp::Write {
            offset: *offset,
            data: data[..(cut_at - offset) as usize].to_vec(),
        })
    }
}

/// One change to a directory's entries, pending until the directory is synced.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DirOp {
    Link {
        name: OsString,
        ino: u64,
    },
    Unlink {
        name: OsString,
    },
    Rename {
        from: OsString,
        to: OsString,
        ino: u64,
    },
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<OsString, u64>) {
        match self {
            DirOp::Link { name, ino } => {
                entries.insert(name.clone(), *ino);
            }
            DirOp::Unlink { name } => {
                entries.remove(name);
            }
            DirOp::Rename { from, to, ino } => {
                entries.remove(from);
                entries.insert(to.clone(), *ino);
            }
        }
    }
}

#[derive(Debug)]
struct FileNode {
    live: Content,
    durable: Content,
    pending: Vec<FileOp>,
}

impl FileNode {
    fn change(&mut self, op: FileOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }
}

#[derive(Debug)]
struct DirNode {
    live: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
    pending: Vec<DirOp>,
    parent: u64,
}

impl DirNode {
    fn change(&mut self, op: DirOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
struct Inode {
    node: Node,
    perm: u16,
    mtime: SystemTime,
}

/// Whether an inode is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// What `stat` shows of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// File or directory.
    pub kind: Kind,
    /// Size in bytes (directories: 4096).
    pub size_bytes: u64,
    /// Pages holding data.
    pub allocated_pages: u64,
    /// Permission bits.
    pub perm: u16,
    /// Last modification.
    pub mtime: SystemTime,
}

#[derive(Debug, Clone, Copy)]
struct Handle {
    ino: u64,
}

/// An errno, as the FUSE layer answers it.
pub type Errno = libc::c_int;

/// The whole filesystem: inodes, open handles, sync counters.
#[derive(Debug)]
pub struct Model {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    syncs: SyncCounts,
}

impl Model {
    /// An empty filesystem: a root directory, durable.
    pub fn empty() -> Model {
        let mut inodes = HashMap::new();
        inodes.insert(ROOT_INO, Model::dir_inode(ROOT_INO, 0o755));
        Model {
            inodes,
            next_ino: ROOT_INO + 1,
            handles: HashMap::new(),
            next_fh: 1,
            syncs: SyncCounts::default(),
        }
    }

    fn dir_inode(parent: u64, perm: u16) -> Inode {
        Inode {
            node: Node::Dir(DirNode {
                live: BTreeMap::new(),
                durable: BTreeMap::new(),
                pending: Vec::new(),
                parent,
            }),
            perm,
            mtime: SystemTime::now(),
        }
    }

    /// The tree under `backing`, all of it durable (a disk that was cleanly unmounted).
    /// Regular files and directories only; anything else is skipped.
    pub fn load(backing: &Path) -> io::Result<Model> {
        let mut model = Model::empty();
        model.load_dir(backing, ROOT_INO)?;
        Ok(model)
    }

    fn load_dir(&mut self, dir: &Path, ino: u64) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let child = if file_type.is_dir() {
                let child = self.alloc_ino();
                self.inodes.insert(child, Model::dir_inode(ino, 0o755));
                self.load_dir(&entry.path(), child)?;
                child
            } else if file_type.is_file() {
                let bytes = std::fs::read(entry.path())?;
                let mut content = Content::default();
                for (index, chunk) in bytes.chunks(PAGE_BYTES as usize).enumerate() {
                    if chunk.iter().any(|b| *b != 0) {
                        content.write(index as u64 * PAGE_BYTES, chunk);
                    }
                }
                content.set_size(bytes.len() as u64);
                let child = self.alloc_ino();
                self.inodes.insert(
                    child,
                    Inode {
                        node: Node::File(FileNode {
                            live: content.clone(),
                            durable: content,
                            pending: Vec::new(),
                        }),
                        perm: 0o644,
                        mtime: SystemTime::now(),
                    },
                );
                child
            } else {
                continue;
            };
            let dir = self.dir_mut(ino).map_err(io::Error::from_raw_os_error)?;
            dir.live.insert(entry.file_name(), child);
            dir.durable.insert(entry.file_name(), child);
        }
        Ok(())
    }

    /// Replaces everything under `backing` with the live tree (call it after a cut or a
    /// [`Model::sync_all`], when live and durable are the same). Files are written sparse.
    pub fn write_tree(&self, backing: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(backing)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        self.write_dir(ROOT_INO, backing)
    }

    fn write_dir(&self, ino: u64, path: &Path) -> io::Result<()> {
        let dir = self.dir(ino).map_err(io::Error::from_raw_os_error)?;
        for (name, child) in &dir.live {
            let child_path = path.join(name);
            match self.inodes.get(child).map(|inode| &inode.node) {
                Some(Node::Dir(_)) => {
                    std::fs::create_dir(&child_path)?;
                    self.write_dir(*child, &child_path)?;
                }
                Some(Node::File(file)) => {
                    use std::os::unix::fs::FileExt;
                    let out = std::fs::File::create(&child_path)?;
                    out.set_len(file.live.size_bytes)?;
                    for (index, page) in &file.live.pages {
                        let start = index * PAGE_BYTES;
                        let len = PAGE_BYTES.min(file.live.size_bytes - start) as usize;
                        out.write_all_at(&page[..len], start)?;
                    }
                }
                None => {}
            }
        }
        Ok(())
    }

    fn alloc_ino(&mut self) -> u64 {
        // Never reused: the kernel may still know an inode number a cut took away.
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    fn inode(&self, ino: u64) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn inode_mut(&mut self, ino: u64) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: u64) -> Result<&DirNode, Errno> {
        match &self.inode(ino)?.node {
            Node::Dir(dir) => Ok(dir),
            Node::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut DirNode, Errno> {
        match &mut self.inode_mut(ino)?.node {
            Node::Dir(dir) => Ok(dir),
            Node::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileNode, Errno> {
        let inode = self.inode_mut(ino)?;
        inode.mtime = SystemTime::now();
        match &mut inode.node {
            Node::File(file) => Ok(file),
            Node::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// `stat` of an inode.
    pub fn attr(&self, ino: u64) -> Result<Attr, Errno> {
        let inode = self.inode(ino)?;
        let (kind, size_bytes, allocated_pages) = match &inode.node {
            Node::File(file) => (
                Kind::File,
                file.live.size_bytes,
                file.live.allocated_pages(),
            ),
            Node::Dir(_) => (Kind::Dir, PAGE_BYTES, 1),
        };
        Ok(Attr {
            ino,
            kind,
            size_bytes,
            allocated_pages,
            perm: inode.perm,
            mtime: inode.mtime,
        })
    }

    /// The inode `name` in directory `parent` names now.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        let dir = self.dir(parent)?;
        if name == "." {
            return Ok(parent);
        }
        if name == ".." {
            return Ok(dir.parent);
        }
        dir.live.get(name).copied().ok_or(libc::ENOENT)
    }

    /// Entries of a directory, `.` and `..` first.
    pub fn entries(&self, ino: u64) -> Result<Vec<(u64, Kind, OsString)>, Errno> {
        let dir = self.dir(ino)?;
        let mut out = vec![
            (ino, Kind::Dir, OsString::from(".")),
            (dir.parent, Kind::Dir, OsString::from("..")),
        ];
        for (name, child) in &dir.live {
            let kind = self.attr(*child)?.kind;
            out.push((*child, kind, name.clone()));
        }
        Ok(out)
    }

    fn link_new(&mut self, parent: u64, name: &OsStr, inode: Inode) -> Result<u64, Errno> {
        if self.dir(parent)?.live.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.alloc_ino();
        self.inodes.insert(ino, inode);
        self.dir_mut(parent)?.change(DirOp::Link {
            name: name.to_owned(),
            ino,
        });
        Ok(ino)
    }

    /// Creates an empty file; its entry is pending until `parent` is synced.
    pub fn create_file(&mut self, parent: u64, name: &OsStr, perm: u16) -> Result<u64, Errno> {
        let inode = Inode {
            node: Node::File(FileNode {
                live: Content::default(),
                durable: Content::default(),
                pending: Vec::new(),
            }),
            perm,
            mtime: SystemTime::now(),
        };
        self.link_new(parent, name, inode)
    }

    /// Creates an empty directory; its entry is pending until `parent` is synced.
    pub fn mkdir(&mut self, parent: u64, name: &OsStr, perm: u16) -> Result<u64, Errno> {
        self.link_new(parent, name, Model::dir_inode(parent, perm))
    }

    /// Removes a file's entry (the inode lives on while open or durably linked).
    pub fn unlink(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if self.attr(ino)?.kind == Kind::Dir {
            return Err(libc::EISDIR);
        }
        self.dir_mut(parent)?.change(DirOp::Unlink {
            name: name.to_owned(),
        });
        Ok(())
    }

    /// Removes an empty directory's entry.
    pub fn rmdir(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if !self.dir(ino)?.live.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.dir_mut(parent)?.change(DirOp::Unlink {
            name: name.to_owned(),
        });
        Ok(())
    }

    /// rename(2), replacing a file or an empty directory at the target unless `no_replace`.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        let moving_kind = self.attr(ino)?.kind;
        match self.lookup(new_parent, new_name) {
            Ok(existing) if existing == ino => return Ok(()),
            Ok(_) if no_replace => return Err(libc::EEXIST),
            Ok(existing) => match (moving_kind, self.attr(existing)?.kind) {
                (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
                (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
                (Kind::Dir, Kind::Dir) if !self.dir(existing)?.live.is_empty() => {
                    return Err(libc::ENOTEMPTY)
                }
                _ => {}
            },
            Err(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if parent == new_parent {
            self.dir_mut(parent)?.change(DirOp::Rename {
                from: name.to_owned(),
                to: new_name.to_owned(),
                ino,
            });
        } else {
            self.dir_mut(parent)?.change(DirOp::Unlink {
                name: name.to_owned(),
            });
            self.dir_mut(new_parent)?.change(DirOp::Link {
                name: new_name.to_owned(),
                ino,
            });
            if let Node::Dir(moved) = &mut self.inode_mut(ino)?.node {
                moved.parent = new_parent;
            }
        }
        Ok(())
    }

    /// Opens an inode: a handle valid until the next cut.
    pub fn open(&mut self, ino: u64) -> Result<u64, Errno> {
        self.inode(ino)?;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino });
        Ok(fh)
    }

    /// Closes a handle (a handle from before a cut is already gone: fine).
    pub fn release(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }

    /// The inode of a live handle; `EIO` for a handle from before a cut (its disk is gone).
    pub fn handle(&self, fh: u64, ino: u64) -> Result<u64, Errno> {
        match self.handles.get(&fh) {
            Some(handle) if handle.ino == ino => Ok(ino),
            _ => Err(libc::EIO),
        }
    }

    /// Reads the live content.
    pub fn read(&self, ino: u64, offset: u64, len: u64) -> Result<Vec<u8>, Errno> {
        match &self.inode(ino)?.node {
            Node::File(file) => Ok(file.live.read(offset, len)),
            Node::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// A write, pending until the file is synced.
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.file_mut(ino)?.change(FileOp::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    /// truncate/ftruncate, pending until the file is synced.
    pub fn set_size(&mut self, ino: u64, size_bytes: u64) -> Result<(), Errno> {
        self.file_mut(ino)?.change(FileOp::SetSize { size_bytes });
        Ok(())
    }

    /// fallocate(2): mode 0 and `FALLOC_FL_KEEP_SIZE` (allocation: only the size can
    /// change), `FALLOC_FL_ZERO_RANGE` and `FALLOC_FL_PUNCH_HOLE` (the range reads as zeros);
    /// other modes are `EOPNOTSUPP`.
    pub fn fallocate(&mut self, ino: u64, offset: u64, len: u64, mode: i32) -> Result<(), Errno> {
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        let zeroing = mode & (libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_PUNCH_HOLE) != 0;
        let known =
            libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_PUNCH_HOLE;
        if mode & !known != 0 || (mode & libc::FALLOC_FL_PUNCH_HOLE != 0 && !keep_size) {
            return Err(libc::EOPNOTSUPP);
        }
        let end = offset.checked_add(len).ok_or(libc::EFBIG)?;
        let file = self.file_mut(ino)?;
        if zeroing {
            file.change(FileOp::Zero { offset, len });
        }
        if !keep_size && end > file.live.size_bytes {
            file.change(FileOp::SetSize { size_bytes: end });
        }
        Ok(())
    }

    /// fsync/fdatasync of a file: its pending ops become durable.
    pub fn sync_file(&mut self, ino: u64) -> Result<(), Errno> {
        let file = self.file_mut(ino)?;
        for op in file.pending.drain(..) {
            op.apply(&mut file.durable);
        }
        debug_assert_eq!(file.durable, file.live);
        self.syncs.file_syncs += 1;
        Ok(())
    }

    /// fsync of a directory: its pending entry ops become durable.
    pub fn sync_dir(&mut self, ino: u64) -> Result<(), Errno> {
        let dir = self.dir_mut(ino)?;
        for op in dir.pending.drain(..) {
            op.apply(&mut dir.durable);
        }
        debug_assert_eq!(dir.durable, dir.live);
        self.syncs.dir_syncs += 1;
        Ok(())
    }

    /// Everything becomes durable: `sync(2)`, or a disk that had time to write back.
    pub fn sync_all(&mut self) {
        for inode in self.inodes.values_mut() {
            match &mut inode.node {
                Node::File(file) => {
                    file.pending.clear();
                    file.durable = file.live.clone();
                }
                Node::Dir(dir) => {
                    dir.pending.clear();
                    dir.durable = dir.live.clone();
                }
            }
        }
    }

    /// Syncs served so far.
    pub fn sync_counts(&self) -> SyncCounts {
        self.syncs
    }

    /// Bytes and ops now pending, as a cut with [`CutMode::DropAllPending`] would drop them.
    pub fn pending(&self) -> CutReport {
        let mut report = CutReport::default();
        for inode in self.inodes.values() {
            match &inode.node {
                Node::File(file) => {
                    report.file_ops_dropped += file.pending.len() as u64;
                    report.bytes_dropped +=
                        file.pending.iter().map(FileOp::data_bytes).sum::<u64>();
                }
                Node::Dir(dir) => report.dir_ops_dropped += dir.pending.len() as u64,
            }
        }
        report
    }

    /// The power cut: see the module doc. Every open handle dies.
    pub fn cut(&mut self, mode: CutMode) -> CutReport {
        let mut rng = SplitMix64::new(match mode {
            CutMode::DropAllPending => 0,
            CutMode::KeepRandomPrefix { seed } | CutMode::TornPage { seed } => seed,
        });
        let mut report = CutReport::default();
        // Sorted, so that a seed draws the same way whatever the hash map's order.
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(inode) = self.inodes.get_mut(&ino) else {
                continue;
            };
            match &mut inode.node {
                Node::File(file) => {
                    let pending = std::mem::take(&mut file.pending);
                    let kept = kept_prefix(mode, pending.len(), &mut rng);
                    for op in &pending[..kept] {
                        op.apply(&mut file.durable);
                    }
                    let mut dropped = &pending[kept..];
                    if let (CutMode::TornPage { .. }, Some(next)) = (mode, dropped.first()) {
                        if let Some(torn) = next.torn(&mut rng) {
                            torn.apply(&mut file.durable);
                            report.writes_torn += 1;
                            report.bytes_dropped += next.data_bytes() - torn.data_bytes();
                            dropped = &dropped[1..];
                        }
                    }
                    report.file_ops_kept += kept as u64;
                    report.file_ops_dropped += (pending.len() - kept) as u64;
                    report.bytes_dropped += dropped.iter().map(FileOp::data_bytes).sum::<u64>();
                    file.live = file.durable.clone();
                }
                Node::Dir(dir) => {
                    let pending = std::mem::take(&mut dir.pending);
                    let kept = kept_prefix(mode, pending.len(), &mut rng);
                    for op in &pending[..kept] {
                        op.apply(&mut dir.durable);
                    }
                    report.dir_ops_kept += kept as u64;
                    report.dir_ops_dropped += (pending.len() - kept) as u64;
                    dir.live = dir.durable.clone();
                }
            }
        }
        self.handles.clear();
        report.inodes_dropped = self.drop_unreachable();
        report
    }

    /// Drops inodes no entry reaches from the root and fixes directories' parents; returns
    /// how many were dropped.
    fn drop_unreachable(&mut self) -> u64 {
        let mut reached = HashMap::new();
        reached.insert(ROOT_INO, ROOT_INO);
        let mut stack = vec![ROOT_INO];
        while let Some(ino) = stack.pop() {
            let Ok(dir) = self.dir(ino) else { continue };
            for child in dir.live.values() {
                if !reached.contains_key(child) {
                    reached.insert(*child, ino);
                    stack.push(*child);
                }
            }
        }
        let before = self.inodes.len();
        self.inodes.retain(|ino, _| reached.contains_key(ino));
        for (ino, parent) in reached {
            if let Ok(dir) = self.dir_mut(ino) {
                dir.parent = parent;
            }
        }
        (before - self.inodes.len()) as u64
    }

    /// Inode numbers that exist now (for kernel cache invalidation after a cut).
    pub fn inode_numbers(&self) -> Vec<u64> {
        self.inodes.keys().copied().collect()
    }
}

fn kept_prefix(mode: CutMode, pending: usize, rng: &mut SplitMix64) -> usize {
    match mode {
        CutMode::DropAllPending => 0,
        CutMode::KeepRandomPrefix { .. } => rng.below(pending as u64 + 1) as usize,
        // A proper prefix, so that there is a next op to tear.
        CutMode::TornPage { .. } if pending > 0 => rng.below(pending as u64) as usize,
        CutMode::TornPage { .. } => 0,
    }
}

/// SplitMix64: a small, well-known seeded generator; enough to draw cut points.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        self.next_u64() % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(model: &mut Model, name: &str) -> u64 {
        model
            .create_file(ROOT_INO, OsStr::new(name), 0o644)
            .unwrap()
    }

    #[test]
    fn content_reads_what_was_written_and_zeros_elsewhere() {
        let mut content = Content::default();
        content.write(5000, b"hello");
        assert_eq!(content.size_bytes(), 5005);
        assert_eq!(content.read(4998, 10), b"\0\0hello");
        content.set_size(5002);
        content.set_size(6000);
        assert_eq!(content.read(5000, 5), b"he\0\0\0");
        content.zero(5000, 1);
        assert_eq!(content.read(5000, 2), b"\0e");
    }

    #[test]
    fn unsynced_writes_are_dropped_and_synced_ones_kept() {
        let mut model = Model::empty();
        let ino = file(&mut model, "f");
        model.sync_dir(ROOT_INO).unwrap();
        model.write(ino, 0, b"synced").unwrap();
        model.sync_file(ino).unwrap();
        model.write(ino, 6, b" lost").unwrap();
        let report = model.cut(CutMode::DropAllPending);
        assert_eq!(report.bytes_dropped, 5);
        assert_eq!(model.read(ino, 0, 100).unwrap(), b"synced");
    }

    #[test]
    fn a_file_whose_directory_was_not_synced_is_gone() {
        let mut model = Model::empty();
        let ino = file(&mut model, "f");
        model.write(ino, 0, b"data").unwrap();
        model.sync_file(ino).unwrap();
        let report = model.cut(CutMode::DropAllPending);
        assert_eq!(report.inodes_dropped, 1);
        assert_eq!(model.lookup(ROOT_INO, OsStr::new("f")), Err(libc::ENOENT));
    }

    #[test]
    fn a_rename_is_atomic_in_one_directory() {
        for seed in 0..50 {
            let mut model = Model::empty();
            let old = file(&mut model, "name");
            model.sync_dir(ROOT_INO).unwrap();
            let new = file(&mut model, "tmp");
            model
                .rename(
                    ROOT_INO,
                    OsStr::new("tmp"),
                    ROOT_INO,
                    OsStr::new("name"),
                    false,
                )
                .unwrap();
            model.cut(CutMode::KeepRandomPrefix { seed });
            let now = model.lookup(ROOT_INO, OsStr::new("name")).unwrap();
            assert!(now == old || now == new, "seed {seed}");
        }
    }

    #[test]
    fn a_torn_write_keeps_whole_sectors_of_a_prefix() {
        let mut torn_seen = false;
        for seed in 0..20 {
            let mut model = Model::empty();
            let ino = file(&mut model, "f");
            model.sync_dir(ROOT_INO).unwrap();
            model.write(ino, 100, &[7u8; 8192]).unwrap();
            let report = model.cut(CutMode::TornPage { seed });
            let size = model.attr(ino).unwrap().size_bytes;
            assert!(
                size == 0 || (size % SECTOR_BYTES == 0 && size < 8292),
                "{size}"
            );
            let data = model.read(ino, 0, size).unwrap();
            assert!(data[100.min(data.len())..].iter().all(|b| *b == 7));
            torn_seen |= report.writes_torn == 1;
        }
        assert!(torn_seen);
    }

    #[test]
    fn a_cut_kills_open_handles() {
        let mut model = Model::empty();
        let ino = file(&mut model, "f");
        let fh = model.open(ino).unwrap();
        model.sync_dir(ROOT_INO).unwrap();
        assert_eq!(model.handle(fh, ino), Ok(ino));
        model.cut(CutMode::DropAllPending);
        assert_eq!(model.handle(fh, ino), Err(libc::EIO));
    }
}
