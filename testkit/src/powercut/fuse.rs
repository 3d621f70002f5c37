//! The FUSE face of the power-cut filesystem: each kernel request becomes one call on the
//! [`Model`] behind a mutex. Every file is opened `FOPEN_DIRECT_IO` and attributes and
//! entries are never cached (TTL 0), so every read, write and sync of the program under test
//! reaches the model: nothing is answered from a kernel page cache that the cut could not
//! touch. The kernel's writeback cache is not requested, and locks (`flock`) stay in the
//! kernel.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::model::{Attr, Kind, Model};

/// Nothing is cached by the kernel: a cut changes the tree under it.
const TTL: Duration = Duration::ZERO;
/// What `statfs` reports: 64 GiB, nearly all free, so a program's disk-space guard never
/// refuses (the model lives in memory; tests keep it small).
const STATFS_BLOCKS: u64 = 16 << 20;
const STATFS_BLOCK_BYTES: u32 = 4096;

/// The FUSE filesystem: a handle on the shared model.
#[derive(Debug)]
pub(crate) struct PowerCutFuse {
    pub(crate) model: Arc<Mutex<Model>>,
    uid: u32,
    gid: u32,
}

impl PowerCutFuse {
    pub(crate) fn new(model: Arc<Mutex<Model>>) -> PowerCutFuse {
        // SAFETY: geteuid/getegid only read the calling process's credentials.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        PowerCutFuse { model, uid, gid }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        // A test that panicked while holding the lock leaves a model that is still whole:
        // every model call completes its change before it returns.
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn file_attr(&self, attr: &Attr) -> FileAttr {
        let (kind, nlink) = match attr.kind {
            Kind::File => (FileType::RegularFile, 1),
            Kind::Dir => (FileType::Directory, 2),
        };
        FileAttr {
            ino: INodeNo(attr.ino),
            size: attr.size_bytes,
            blocks: attr.allocated_pages * 8,
            atime: attr.mtime,
            mtime: attr.mtime,
            ctime: attr.mtime,
            crtime: attr.mtime,
            kind,
            perm: attr.perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: STATFS_BLOCK_BYTES,
            flags: 0,
        }
    }

    fn reply_entry(&self, result: Result<Attr, libc::c_int>, reply: ReplyEntry) {
        match result {
            Ok(attr) => reply.entry(&TTL, &self.file_attr(&attr), Generation(0)),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }
}

fn empty(result: Result<(), libc::c_int>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(errno) => reply.error(Errno::from_i32(errno)),
    }
}

fn perm_of(mode: u32, umask: u32) -> u16 {
    ((mode & !umask) & 0o7777) as u16
}

impl Filesystem for PowerCutFuse {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let model = self.model();
        let result = model.lookup(parent.0, name).and_then(|ino| model.attr(ino));
        drop(model);
        self.reply_entry(result, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.model().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &self.file_attr(&attr)),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut model = self.model();
        let result = (|| {
            if let Some(fh) = fh {
                model.handle(fh.0, ino.0)?;
            }
            if let Some(size) = size {
                model.set_size(ino.0, size)?;
            }
            // Modes are not modelled: a chmod is accepted and forgotten.
            let _ = mode;
            model.attr(ino.0)
        })();
        drop(model);
        match result {
            Ok(attr) => reply.attr(&TTL, &self.file_attr(&attr)),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut model = self.model();
        let result = model
            .mkdir(parent.0, name, perm_of(mode, umask))
            .and_then(|ino| model.attr(ino));
        drop(model);
        self.reply_entry(result, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.model().unlink(parent.0, name), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.model().rmdir(parent.0, name), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::from_i32(libc::EINVAL));
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        empty(
            self.model()
                .rename(parent.0, name, newparent.0, newname, no_replace),
            reply,
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // O_TRUNC arrives as a setattr before the open (no atomic_o_trunc requested).
        match self.model().open(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut model = self.model();
        let result = model
            .create_file(parent.0, name, perm_of(mode, umask))
            .and_then(|ino| Ok((model.attr(ino)?, model.open(ino)?)));
        drop(model);
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &self.file_attr(&attr),
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let model = self.model();
        let result = model
            .handle(fh.0, ino.0)
            .and_then(|ino| model.read(ino, offset, u64::from(size)));
        drop(model);
        match result {
            Ok(data) => reply.data(&data),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut model = self.model();
        let result = model
            .handle(fh.0, ino.0)
            .and_then(|ino| model.write(ino, offset, data));
        drop(model);
        match (result, u32::try_from(data.len())) {
            (Ok(()), Ok(written)) => reply.written(written),
            (Ok(()), Err(_)) => reply.error(Errno::from_i32(libc::EFBIG)),
            (Err(errno), _) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.model().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // fdatasync and fsync both promote data and size (see the model's doc).
        let mut model = self.model();
        let result = model
            .handle(fh.0, ino.0)
            .and_then(|ino| model.sync_file(ino));
        drop(model);
        empty(result, reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model().open(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(errno) => reply.error(Errno::from_i32(errno)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.model().entries(ino.0) {
            Ok(entries) => entries,
            Err(errno) => return reply.error(Errno::from_i32(errno)),
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (index, (child, kind, name)) in entries.into_iter().enumerate().skip(skip) {
            let kind = match kind {
                Kind::File => FileType::RegularFile,
                Kind::Dir => FileType::Directory,
            };
            if reply.add(INodeNo(child), index as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.model().release(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut model = self.model();
        let result = model
            .handle(fh.0, ino.0)
            .and_then(|ino| model.sync_dir(ino));
        drop(model);
        empty(result, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(
            STATFS_BLOCKS,
            STATFS_BLOCKS - 1024,
            STATFS_BLOCKS - 1024,
            1 << 20,
            1 << 20,
            STATFS_BLOCK_BYTES,
            255,
            STATFS_BLOCK_BYTES,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        empty(self.model().attr(ino.0).map(|_| ()), reply);
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut model = self.model();
        let result = model
            .handle(fh.0, ino.0)
            .and_then(|ino| model.fallocate(ino, offset, length, mode));
        drop(model);
        empty(result, reply);
    }
}
