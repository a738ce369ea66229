extension Pipeline {
    /// One output of an earlier model fed to one input of a later model: `a.OUT=b.IN`.
    public struct Link: Equatable, Sendable, CustomStringConvertible {
        /// Model indices in the pipeline (`from` < `to`).
        public var from: Int
        public var output: String
        public var to: Int
        public var input: String

        public init(from: Int, output: String, to: Int, input: String) {
            self.from = from
            self.output = output
            self.to = to
            self.input = input
        }

        public var description: String { "\(from).\(output)=\(to).\(input)" }

        /// Parses `MODEL.TENSOR=MODEL.TENSOR`, a model named by one of `modelNames` (e.g. bundle file stems) or by
        /// its index. Names and tensors may contain dots: the longest model name that prefixes a side wins.
        public static func parse(_ text: String, modelNames: [String]) throws -> Link {
            let sides = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard sides.count == 2 else {
                throw PipelineError(map: text, reason: "expected MODEL.OUTPUT=MODEL.INPUT")
            }
            func side(_ part: String, _ what: String) throws -> (Int, String) {
                var best: (model: Int, tensor: String, length: Int)? = nil
                let names = modelNames.enumerated().map { ($0.offset, $0.element) }
                    + modelNames.indices.map { ($0, String($0)) }
                for (index, name) in names where part.hasPrefix(name + ".") && name.count > (best?.length ?? -1) {
                    best = (index, String(part.dropFirst(name.count + 1)), name.count)
                }
                guard let best, !best.tensor.isEmpty else {
                    throw PipelineError(map: text, reason: "'\(part)' does not name a model's \(what): expected MODEL.\(what.uppercased()) "
                                        + "with MODEL one of " + modelNames.enumerated().map { "\($0.element) (\($0.offset))" }
                                            .joined(separator: ", "))
                }
                return (best.model, best.tensor)
            }
            let (from, output) = try side(sides[0], "output")
            let (to, input) = try side(sides[1], "input")
            return Link(from: from, output: output, to: to, input: input)
        }
    }
}

/// A pipeline that cannot be built or run as asked: which map (`a.OUT=b.IN`) or model, and why.
public struct PipelineError: Error, CustomStringConvertible, Equatable {
    /// The map as given, or the model it concerns.
    public var map: String
    public var reason: String

    public init(map: String, reason: String) {
        self.map = map
        self.reason = reason
    }

    public var description: String { "\(map): \(reason)" }
}
