#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a session brings weights to the device.
public enum LoadMode: String, Sendable, CaseIterable {
    /// Every run streams weight chunks while kernels run, as the bundle's schedule says; images with
    /// disjoint lifetimes share pool memory. Low memory; pays the copies on every run.
    case streaming
    /// The first run copies every weight once and they stay resident; later runs only compute.
    case preload
}

/// How the streamer reads uncompressed chunk payloads of a bundle opened from a file. pread is the default: it costs
/// the same wherever the file system caches the file, while faulting the mapping in page by page can cost several
/// times the bytes (an H100 host, 2026-12-08, ViT-B/16 fp16 at 25%: first run 113 ms with mmap against 15 ms with
/// pread). Where mapped pages fault in cheaply, memcpy from the mapping was 5-8% faster (the H200 host,
/// GPT-Neo-1.3B at 25%: first run 113 vs 119 ms, warm 84.4 vs 91.1 ms; Benchmarks/README.md).
public enum HostRead: String, Sendable, CaseIterable {
    /// memcpy from the memory mapping (first touches fault every 4 KiB page in).
    case mmap
    /// pread(2) into the staging ring: the kernel copies from the page cache, no page faults on the mapping.
    case pread
}

/// How a session loads weights, stages chunks, profiles and traces.
public struct SessionOptions: Sendable {
    /// Streaming (the default: chunks copied while the kernels run, as the plan says) or preload (copied once, kept).
    public var loadMode: LoadMode
    /// Requested size of the pinned staging ring chunks are decoded into. The session uses at least
    /// twice the largest chunk and never more than all chunks together. A ring that holds every chunk a run
    /// streams keeps them decoded: later warm runs only copy, with no memcpy from the bundle, for host memory equal
    /// to the streamed set (ViT-B/16 fp16 at 25% on an H100, a 256 MiB ring: warm 5.70 → 5.13 ms).
    public var stagingBytes: UInt64
    /// Largest streamed set the ring grows to hold: when the chunks a warm run streams take more than the ring
    /// (`stagingBytes`) but at most this many bytes, the first warm run replaces the ring by one that holds them
    /// all, and later runs only copy. The first run never grows it, so start-up and first output are unchanged.
    /// Costs pinned host memory equal to the streamed set, per session. 0: never grow.
    /// Default `defaultHoldStreamedSetBytes`.
    public var holdStreamedSetBytes: UInt64 = SessionOptions.defaultHoldStreamedSetBytes
    /// Record a timestamp around every step and report per-step GPU times (`RunStats.stepSeconds`).
    public var profile: Bool
    /// Record a timeline of every run (`RunStats.trace`): kernels and copies from GPU timestamps, host decode
    /// waves and waits. Cheap (a few clock reads per wave), but off unless asked.
    public var trace: Bool
    /// Longest the host waits for any one GPU event before giving up with VK_TIMEOUT, in seconds.
    public var waitTimeoutSeconds: Double

    public var hostRead: HostRead = .pread
    /// Check every weight chunk against its checksum the first time the session streams it, before its copy is
    /// submitted (`ChunkVerifier`): a corrupted or modified bundle is a `RuntimeError.chunkChecksum` instead of
    /// wrong outputs. Costs a hash of each chunk once per session (warm runs skip verified chunks). Turn it off
    /// only for bundles you trust (`fmrun --trust-bundle`, FM_SESSION_TRUST_BUNDLE).
    public var verifyChunks = true
    /// Streamed runs on a device with a transfer queue of its own: submit every semaphore wait only after the
    /// submission that signals it (the compute thread then waits on the host for the streamer's copies, and the
    /// streamer for the compute batches its copies wait for), instead of submitting every compute batch at once.
    /// A driver may hold a submission that waits for an unsubmitted value back on a thread of its own
    /// (Benchmarks/boundaries measures what that costs). Off by default.
    public var signalsBeforeWaits = false
    /// One copy command per weight chunk, as before chunks that continue each other (next rows of a layer, whole
    /// consecutive layers, adjacent in the staging ring) were copied as one region. For measuring what that saves
    /// (`fmrun --copy-per-chunk`); off by default.
    public var copyPerChunk = false
    /// The most host threads that decode (memcpy or zstd) chunks into the staging ring at once; 0: every core
    /// (`fmrun --decode-threads`). For measuring, or to leave cores to the app: on an H100 host one thread decoded
    /// at 6 GB/s against 56 on every core, and the transfer queue copied at 30.4 against 28.3 GB/s.
    public var decodeThreads = 0

    /// 512 MiB, or a sixteenth of the machine's memory where that is less.
    public static var defaultHoldStreamedSetBytes: UInt64 {
        let pages = max(sysconf(Int32(_SC_PHYS_PAGES)), 0), pageSize = max(sysconf(Int32(_SC_PAGESIZE)), 0)
        return min(512 << 20, UInt64(pages) * UInt64(pageSize) / 16)
    }

    /// `waitTimeoutSeconds` as Vulkan wants it (at least 1 ms).
    var waitTimeoutNanoseconds: UInt64 { UInt64(max(waitTimeoutSeconds, 0.001) * 1e9) }
    /// Whether GPU timestamps are recorded (profiles and traces both need them).
    var timestamps: Bool { profile || trace }
    /// Keep compiled pipelines in a cache file between processes (`PipelineCacheFile`).
    public var pipelineCache = true
    /// The cache folder; nil: $FLASHMEM_CACHE_DIR, else $XDG_CACHE_HOME/flashmem, else ~/.cache/flashmem.
    public var pipelineCacheDirectory: String? = nil

    public init(loadMode: LoadMode = .streaming, stagingBytes: UInt64 = 64 << 20, profile: Bool = false,
                waitTimeoutSeconds: Double = 600, trace: Bool = false) {
        self.loadMode = loadMode
        self.stagingBytes = stagingBytes
        self.profile = profile
        self.waitTimeoutSeconds = waitTimeoutSeconds
        self.trace = trace
    }
}
