// The manifest of a planned pipeline: what `fmc plan-pipeline` writes beside the bundles it replanned
// (DIR/pipeline.json) and `fmrun --pipeline DIR/pipeline.json` runs: the bundles in order, the ONE budget of
// their device context, and per model the budget its plan was solved for.
//
// It lives beside the bundle format for the same reason as `CostProfile`: the compiler writes it, the runtime
// reads it, and neither may depend on the other. Codable only (no Foundation here); the CLIs encode and decode
// it with Foundation's JSONEncoder / JSONDecoder, then call `validate()`.
//
// JSON schema (version 1), bytes as integers, times in seconds:
//
//     {
//       "version": 1,
//       "budgetBytes": 536870912,            // the DeviceContext budget every model runs under
//       "predictedSeconds": 0.0123,          // Σ models' predicted seconds (one pass of the chain)
//       "models": [
//         {
//           "bundle": "a.fmb",               // relative to the manifest's folder (or absolute)
//           "planBudgetBytes": 268435456,    // the budget its load plan was solved for (schedule.budgetBytes)
//           "footprintBytes": 250000000,     // planned arena + weight space (≤ planBudgetBytes)
//           "predictedSeconds": 0.006,       // its cost in the chain (see PipelinePlanning in the compiler)
//           "prefetchBytes": 120000000       // resident bytes copied while the model before it runs (0: none)
//         }, ...
//       ]
//     }
//
// Meaning: planBudgetBytes of consecutive models fit the budget together (b_i + b_{i+1} ≤ budgetBytes), so the
// runtime's cross-model prefetch has room; where two models cannot fit side by side at all, the later one has
// prefetchBytes 0 and the pair is not checked.

/// A planned pipeline's manifest. See the schema above.
public struct PipelineManifest: Codable, Equatable, Sendable {
    public static let currentVersion = 1
    /// The manifest's usual file name in the folder `fmc plan-pipeline -o DIR` writes.
    public static let fileName = "pipeline.json"

    public struct Model: Codable, Equatable, Sendable {
        /// The bundle's path, relative to the manifest's folder unless it starts with "/".
        public var bundle: String
        public var planBudgetBytes: UInt64
        public var footprintBytes: UInt64
        public var predictedSeconds: Double
        public var prefetchBytes: UInt64

        public init(bundle: String, planBudgetBytes: UInt64, footprintBytes: UInt64, predictedSeconds: Double,
                    prefetchBytes: UInt64) {
            self.bundle = bundle
            self.planBudgetBytes = planBudgetBytes
            self.footprintBytes = footprintBytes
            self.predictedSeconds = predictedSeconds
            self.prefetchBytes = prefetchBytes
        }
    }

    public var version: Int
    public var budgetBytes: UInt64
    public var predictedSeconds: Double
    public var models: [Model]

    public init(budgetBytes: UInt64, models: [Model]) {
        self.version = PipelineManifest.currentVersion
        self.budgetBytes = budgetBytes
        self.models = models
        self.predictedSeconds = models.reduce(0) { $0 + $1.predictedSeconds }
    }

    /// Every problem with the manifest's meaning, each naming its field (`models[1].planBudgetBytes`) and what was
    /// expected; empty when it is good.
    public func problems() -> [String] {
        var problems: [String] = []
        if version != PipelineManifest.currentVersion {
            problems.append("version: \(version), this build reads version \(PipelineManifest.currentVersion)")
        }
        if budgetBytes == 0 { problems.append("budgetBytes: 0, expected the context budget in bytes (> 0)") }
        if models.isEmpty { problems.append("models: empty, expected at least one model") }
        for (i, model) in models.enumerated() {
            if model.bundle.isEmpty { problems.append("models[\(i)].bundle: empty, expected a .fmb file name") }
            if model.planBudgetBytes > budgetBytes {
                problems.append("models[\(i)].planBudgetBytes: \(model.planBudgetBytes), more than budgetBytes "
                                + "(\(budgetBytes))")
            }
            if model.footprintBytes > model.planBudgetBytes {
                problems.append("models[\(i)].footprintBytes: \(model.footprintBytes), more than its planBudgetBytes "
                                + "(\(model.planBudgetBytes))")
            }
            if !model.predictedSeconds.isFinite || model.predictedSeconds < 0 {
                problems.append("models[\(i)].predictedSeconds: \(model.predictedSeconds), expected ≥ 0")
            }
            if i > 0, model.prefetchBytes > 0, models[i - 1].planBudgetBytes + model.planBudgetBytes > budgetBytes {
                problems.append("models[\(i)].prefetchBytes: \(model.prefetchBytes) but models[\(i - 1)] and "
                                + "models[\(i)] plan for \(models[i - 1].planBudgetBytes) + \(model.planBudgetBytes) "
                                + "bytes, more than budgetBytes (\(budgetBytes)); expected 0 where they cannot "
                                + "prefetch")
            }
        }
        return problems
    }

    /// `bundle` of model `index` as a path: relative names are taken from `folder` (the manifest's).
    public func bundlePath(_ index: Int, folder: String) -> String {
        let bundle = models[index].bundle
        if bundle.hasPrefix("/") || folder.isEmpty { return bundle }
        return folder.hasSuffix("/") ? folder + bundle : folder + "/" + bundle
    }

    /// A decoding failure in words: the field (`models[0].footprintBytes`) and what was expected there.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.reduce("") { text, key in
                if let index = key.intValue { return text + "[\(index)]" }
                return text.isEmpty ? key.stringValue : text + "." + key.stringValue
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return "\(field): missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): null, expected \(type)"
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            return (field.isEmpty ? "" : field + ": ") + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }
}
