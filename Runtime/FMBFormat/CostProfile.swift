// The measured cost profile of one bundle on one device: what `fmrun --profile-out` writes and
// `fmc compile --profile` plans with (profile-guided schedules, DESIGN.md "The schedule problem").
//
// It lives beside the bundle format because both sides share it: the runtime produces it, the compiler
// consumes it, and neither may depend on the other. Codable only (no Foundation here); the CLIs encode and
// decode it with Foundation's JSONEncoder / JSONDecoder.
//
// JSON schema (version 1), every time in seconds, every rate in bytes per second:
//
//     {
//       "version": 1,
//       "model": "tiny",                       // meta.modelName of the bundle that ran
//       "device": "NVIDIA H200",               // VkPhysicalDeviceProperties.deviceName
//       "loadMode": "streaming",               // or "preload"
//       "warmRuns": 3,                         // runs the step times are the median of (0: the first run)
//       "stepLabels": ["/l0/MatMul", ...],     // Step.label, one per step, in program order
//       "stepSeconds": [0.00012, ...],         // median GPU time of each step (compute-queue timestamps)
//       "bytesStreamed": 6340000000,           // decoded chunk bytes copied by the measured run
//       "transferSeconds": 0.128,              // time the transfer queue spent copying them (absent: none)
//       "transferBandwidth": 4.95e10,          // bytesStreamed / transferSeconds (absent: nothing streamed)
//       "transferTiming": "gpuTimestamps",     // or "hostWall" (see `TransferTiming`), "none"
//       "decodeSeconds": 0.160,                // host time decoding (memcpy / zstd) chunks into staging (none
//                                              // where a staging ring that holds them kept them decoded)
//       "decodeBandwidth": 3.96e10             // bytesStreamed / decodeSeconds (absent: nothing streamed or
//                                              // decoded, or only a first run copied: fmrun leaves its decode time out)
//     }

/// A measured profile of one bundle on one device. See the schema above.
public struct CostProfile: Codable, Equatable, Sendable {
    public static let currentVersion = 1

    /// How `transferSeconds` was measured.
    public enum TransferTiming: String, Codable, Sendable {
        /// The union of the per-chunk copy intervals from timestamps on the transfer queue (their sum before
        /// 2026-12-08).
        case gpuTimestamps
        /// The transfer queue has no timestamps: host wall time from the first copy's submission until the host
        /// saw the last one complete (includes time copies waited for kernels, so the bandwidth is a low estimate).
        case hostWall
        /// Nothing was copied.
        case none
    }

    public var version: Int
    public var model: String
    public var device: String
    public var loadMode: String
    public var warmRuns: Int
    public var stepLabels: [String]
    public var stepSeconds: [Double]
    public var bytesStreamed: UInt64
    public var transferSeconds: Double?
    public var transferBandwidth: Double?
    public var transferTiming: TransferTiming
    public var decodeSeconds: Double
    public var decodeBandwidth: Double?

    public init(model: String, device: String, loadMode: String, warmRuns: Int, stepLabels: [String],
                stepSeconds: [Double], bytesStreamed: UInt64, transferSeconds: Double?,
                transferTiming: TransferTiming, decodeSeconds: Double) {
        self.version = CostProfile.currentVersion
        self.model = model
        self.device = device
        self.loadMode = loadMode
        self.warmRuns = warmRuns
        self.stepLabels = stepLabels
        self.stepSeconds = stepSeconds
        self.bytesStreamed = bytesStreamed
        self.transferSeconds = bytesStreamed > 0 ? transferSeconds : nil
        self.transferTiming = bytesStreamed > 0 && transferSeconds != nil ? transferTiming : .none
        self.transferBandwidth = self.transferSeconds.flatMap { $0 > 0 ? Double(bytesStreamed) / $0 : nil }
        self.decodeSeconds = decodeSeconds
        self.decodeBandwidth = bytesStreamed > 0 && decodeSeconds > 0 ? Double(bytesStreamed) / decodeSeconds : nil
    }

    /// The rate streaming sustains: chunks pass through the host memcpy and then the copy, so the slower of
    /// the two (nil when the profile measured neither).
    public var streamingBandwidth: Double? {
        switch (transferBandwidth, decodeBandwidth) {
        case let (t?, d?): min(t, d)
        case let (t?, nil): t
        case let (nil, d?): d
        case (nil, nil): nil
        }
    }

    /// Why this profile does not describe a program with steps `labels`, or nil when it does (same step count,
    /// same labels in order, times all finite and non-negative).
    public func mismatch(stepLabels labels: [String]) -> String? {
        if version != CostProfile.currentVersion {
            return "profile version \(version), this build reads version \(CostProfile.currentVersion)"
        }
        if stepSeconds.count != stepLabels.count {
            return "the profile has \(stepLabels.count) step labels but \(stepSeconds.count) step times"
        }
        if labels.count != stepLabels.count {
            return "the profile is for a bundle of \(stepLabels.count) steps (model '\(model)'), this program has "
                + "\(labels.count) steps"
        }
        if let k = labels.indices.first(where: { labels[$0] != stepLabels[$0] }) {
            return "step \(k) is '\(labels[k])' here but '\(stepLabels[k])' in the profile (model '\(model)')"
        }
        if let k = stepSeconds.indices.first(where: { !stepSeconds[$0].isFinite || stepSeconds[$0] < 0 }) {
            return "step \(k) has time \(stepSeconds[k]) s in the profile"
        }
        return nil
    }
}
