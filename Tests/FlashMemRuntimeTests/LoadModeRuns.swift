import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

extension CompileOptions {
    /// 4 KiB weight chunks: several per weight, so a streaming session really streams pieces.
    static var smallChunks: CompileOptions {
        var options = CompileOptions()
        options.chunkBytes = 4096
        return options
    }
}

extension XCTestCase {
    /// Assembles `program` into an in-memory bundle and runs it on `feeds` once per load mode (streaming, then
    /// preload), each in its own session on the shared test device. Returns the outputs by mode.
    func runInEveryLoadMode(_ program: LoweredProgram, name: String, options: CompileOptions = .smallChunks,
                            feeds: [HostTensor]) throws -> [LoadMode: [HostTensor]] {
        let compiled = try Compiler.assemble(program, name: name, options: options)
        let loaded = LoadedBundle(bundle: compiled.bundle, payload: compiled.payload)
        var results: [LoadMode: [HostTensor]] = [:]
        for mode in LoadMode.allCases {
            let session = try Session(bundle: loaded, device: device(), options: SessionOptions(loadMode: mode))
            results[mode] = try session.run(inputs: feeds)
        }
        return results
    }
}
