#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file (`mmap(PROT_READ, MAP_PRIVATE)`), unmapped on deinit.
/// Thread-safe: the bytes never change while it lives.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    /// The open file, kept for `read(into:at:)` until deinit.
    private let descriptor: Int32
    /// Size and modification time at open, for `changeSinceOpen`.
    private let opened: FileStamp

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path: path, call: "open", errno: errno) }
        descriptor = fd
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw FileError(path: path, call: "fstat", errno: errno)
        }
        guard st.st_mode & S_IFMT != S_IFDIR else {  // open(2) succeeds on a directory; mmap would say ENODEV
            close(fd)
            throw FileError(path: path, call: "open", errno: EISDIR)
        }
        let size = Int(st.st_size)
        opened = FileStamp(st)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            close(fd)
            throw FileError(path: path, call: "mmap", errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
        close(descriptor)
    }

    /// Copies the mapped bytes `source` (a range of `bytes`) into `destination` with pread(2): the kernel copies
    /// straight from the page cache, so first reads of a large bundle take no page fault per 4 KiB page as a
    /// memcpy from the mapping would. Thread-safe.
    public func read(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer) throws {
        guard let base = bytes.baseAddress, let start = source.baseAddress else { return }
        var done = 0
        let offset = start - base
        precondition(offset >= 0 && offset + source.count <= bytes.count, "read outside the mapping")
        while done < source.count {
            let n = pread(descriptor, destination + done, source.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FileError(path: path, call: "pread", errno: n == 0 ? EIO : errno) }
            done += n
        }
    }

    /// What changed in the open file since it was mapped (its size or its modification time: it was written,
    /// truncated or extended in place), or nil when nothing did. Writes to the file show through a private
    /// mapping, and reading a page past a truncated end raises SIGBUS, so a user of the mapping checks this before
    /// reading it again. A file replaced by rename(2) keeps this mapping intact (the old inode): not a change. One
    /// fstat(2); thread-safe.
    public func changeSinceOpen() -> String? {
        var st = stat()
        guard fstat(descriptor, &st) == 0 else { return "fstat failed: \(String(cString: strerror(errno)))" }
        let now = FileStamp(st)
        if now.size != opened.size { return "its size went from \(opened.size) to \(now.size) bytes" }
        if now.modified != opened.modified { return "it was written (modification time changed)" }
        return nil
    }

    /// Asks the kernel to read `range` ahead (`madvise(MADV_WILLNEED)`); a hint, failures are ignored.
    public func willNeed(offset: Int, count: Int) {
        guard let base = bytes.baseAddress, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), offset + count - start, MADV_WILLNEED)
    }
}

extension MappedFile {
    /// Unmaps the file's pages from this process (`madvise(MADV_DONTNEED)`; the mapping is private and never
    /// written, so nothing is lost: the next read faults them in again from the page cache). Keeps a reader that
    /// walks a large file once from holding all of it in its resident set. Failures are ignored (a hint).
    public func dropResidentPages() {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_DONTNEED)
    }
}

/// The fields of stat(2) that change when a file's contents do (not ctime: a rename or chmod changes it).
private struct FileStamp {
    var size: Int64
    var modified: (Int, Int)

    init(_ st: stat) {
        size = Int64(st.st_size)
        #if canImport(Darwin)
        modified = (Int(st.st_mtimespec.tv_sec), Int(st.st_mtimespec.tv_nsec))
        #else
        modified = (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec))
        #endif
    }
}

/// A failed file system call, with the path and the errno it gave.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var call: String
    public var errno: Int32

    public init(path: String, call: String, errno: Int32) {
        self.path = path
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(path): \(reason)" }

    /// The failed call and its errno text, without the path (for messages that name the path already).
    public var reason: String {
        errno == EISDIR ? "is a directory, not a file" : "\(call) failed: \(String(cString: strerror(errno)))"
    }
}
