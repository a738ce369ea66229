// One ONNX backend node test on disk (node/test_<name>/model.onnx + test_data_set_<k>/input_<i>.pb,
// output_<i>.pb), the suite of them under a directory, and the per-test facts decided before any compiling:
// the operator, the tolerances, and whether the test's types are ones FlashMem exchanges at all.
// Owned by fmc-conformance.

import Foundation

/// One data set of a test: the serialized input and expected output tensors, in graph input/output order.
struct DataSet {
    var inputs: [TensorFile]
    var outputs: [TensorFile]
}

struct NodeTest {
    var name: String
    var directory: URL
    /// The operator the test is filed under (see `Suite.operatorOf`).
    var op: String
    var model: ModelInfo
    /// onnx's backend runner compares with rtol 1e-3, atol 1e-7 unless the test directory has a data.json that
    /// sets others (onnx.backend.test.loader reads "rtol"/"atol" from it): mirrored here.
    var rtol = 1e-3
    var atol = 1e-7

    var modelPath: String { directory.appendingPathComponent("model.onnx").path }

    /// The test's name with an `_expanded…` suffix removed: the test an expanded variant writes out.
    static func baseName(_ name: String) -> String {
        guard let range = name.range(of: "_expanded") else { return name }
        return String(name[..<range.lowerBound])
    }

    /// Why the test cannot run on FlashMem whatever the compiler does, judged from the declared types alone:
    /// a non-tensor input or output ("sequence type") or a dtype other than float, float16, int32, int64 and
    /// bool ("dtype double"). nil when every input and output is a tensor of an exchangeable dtype.
    var typeReason: String? {
        for value in model.inputs + model.outputs {
            if value.kind != .tensor { return "\(value.kind.rawValue) type" }
        }
        for value in model.inputs + model.outputs where ONNXType.elementType(value.dtype) == nil {
            return "dtype \(ONNXType.name(value.dtype))"
        }
        return nil
    }

    /// Why the test cannot run on FlashMem, judged from its operators alone: a node of a domain other than the
    /// default ONNX domain ("domain ai.onnx.ml"), which FlashMem does not implement. nil otherwise.
    var domainReason: String? {
        model.nodes.first(where: { !($0.domain.isEmpty || $0.domain == "ai.onnx") }).map { "domain \($0.domain)" }
    }

    /// Why the test is decided without compiling it (`typeReason`, then `domainReason`), or nil.
    var staticReason: String? { typeReason ?? domainReason }

    /// The data sets, read and decoded (test_data_set_0, 1, … in numeric order).
    func dataSets() throws -> [DataSet] {
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("test_data_set_") }
        let ordered = names.sorted {
            (Int($0.dropFirst("test_data_set_".count)) ?? 0) < (Int($1.dropFirst("test_data_set_".count)) ?? 0)
        }
        return try ordered.map { setName in
            let dir = directory.appendingPathComponent(setName)
            func files(_ prefix: String) throws -> [TensorFile] {
                var out: [TensorFile] = []
                while true {
                    let path = dir.appendingPathComponent("\(prefix)_\(out.count).pb").path
                    guard fm.fileExists(atPath: path) else { return out }
                    out.append(try TensorFile.read(path: path))
                }
            }
            return DataSet(inputs: try files("input"), outputs: try files("output"))
        }
    }

    /// A dtype of the test data outside the exchangeable ones ("dtype double"), or nil. The declared types are
    /// checked by `typeReason`; this catches data whose dtype the model leaves undeclared.
    static func dataReason(_ sets: [DataSet]) -> String? {
        for set in sets {
            for file in set.inputs + set.outputs where file.tensor == nil {
                return "dtype \(file.dtypeName)"
            }
        }
        return nil
    }
}

/// A directory of node tests: DIR/node/test_* (the materialize script's layout), or DIR/test_* directly.
struct Suite {
    var root: URL
    var nodeDirectory: URL
    var testNames: [String]

    init(path: String) throws {
        let fm = FileManager.default
        root = URL(fileURLWithPath: path).standardizedFileURL
        var isDir: ObjCBool = false
        let node = root.appendingPathComponent("node")
        if fm.fileExists(atPath: node.path, isDirectory: &isDir), isDir.boolValue {
            nodeDirectory = node
        } else {
            nodeDirectory = root
        }
        let nodeDir = nodeDirectory
        let entries = (try? fm.contentsOfDirectory(atPath: nodeDir.path)) ?? []
        testNames = entries.filter {
            $0.hasPrefix("test_") && fm.fileExists(atPath: nodeDir.appendingPathComponent($0)
                .appendingPathComponent("model.onnx").path)
        }.sorted()
        guard !testNames.isEmpty else {
            throw TestDataError(path: path, reason: "no node tests here (expected node/test_*/model.onnx or "
                + "test_*/model.onnx; write them with materialize_onnx_node_tests.py --out DIR)")
        }
    }

    /// Loads one test: its model's declared types, its operator and its tolerances.
    func load(_ name: String) throws -> NodeTest {
        let dir = nodeDirectory.appendingPathComponent(name)
        let model = try ModelInfo.read(path: dir.appendingPathComponent("model.onnx").path)
        var test = NodeTest(name: name, directory: dir, op: try operatorOf(name, model: model), model: model)
        let dataJSON = dir.appendingPathComponent("data.json")
        if let data = FileManager.default.contents(atPath: dataJSON.path),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if let rtol = object["rtol"] as? Double { test.rtol = rtol }
            if let atol = object["atol"] as? Double { test.atol = atol }
        }
        return test
    }

    /// The operator a test is filed under: its model's top-level op; for an `_expanded` variant (the op written
    /// out as its function body) the op of the test it expands, as the materialize script files them.
    func operatorOf(_ name: String, model: ModelInfo) throws -> String {
        let base = NodeTest.baseName(name)
        if base != name {
            let basePath = nodeDirectory.appendingPathComponent(base).appendingPathComponent("model.onnx").path
            if FileManager.default.fileExists(atPath: basePath) {
                return try ModelInfo.read(path: basePath).operatorName
            }
        }
        return model.operatorName
    }
}
