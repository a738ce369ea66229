// The outcome of one node test, as the report prints it, --json writes it, and a worker process sends it to the
// supervising process (one JSON object per line). Owned by fmc-conformance.

import Foundation

enum TestStatus: String, Codable {
    case passed, failed, unsupported
}

struct TestResult: Codable {
    var name: String
    var op: String
    var status: TestStatus
    /// Short and groupable: "dtype double", "attribute auto_pad=SAME_UPPER", "output 0 'y': 3/60 elements off…".
    var reason: String?
    /// The full error text when `reason` shortens it.
    var detail: String?
    /// Over all outputs: the largest |actual − expected| and |actual − expected| / |expected| seen, the number of
    /// elements outside the tolerance and the number compared.
    var maxAbsError: Double?
    var maxRelError: Double?
    var mismatched: Int?
    var elements: Int?
    var rtol: Double?
    var atol: Double?
    /// Inputs made constants before compiling (shape operands and weights; see PinnedInputs).
    var pinnedInputs: [String]?
    /// Whether onnxruntime passes the test (nil: no baseline).
    var ortPasses: Bool?
    /// Whether every input and output is a tensor of float, float16, int32, int64 or bool.
    var exchangeableTypes: Bool
    /// Listed in --expected-failures.
    var expectedFailure: Bool?
    var seconds: Double

    init(name: String, op: String, status: TestStatus, reason: String? = nil, exchangeableTypes: Bool,
         seconds: Double = 0) {
        self.name = name
        self.op = op
        self.status = status
        self.reason = reason
        self.exchangeableTypes = exchangeableTypes
        self.seconds = seconds
    }
}
