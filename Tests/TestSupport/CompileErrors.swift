import FlashMemCompiler
import XCTest

/// Runs `body`, which must throw a `CompileError`, and returns it (a test failure, and nil, when it throws
/// nothing or something else).
public func compileError(_ body: () throws -> Void, file: StaticString = #filePath,
                         line: UInt = #line) -> CompileError? {
    do {
        try body()
        XCTFail("expected a CompileError", file: file, line: line)
    } catch let error as CompileError {
        return error
    } catch {
        XCTFail("expected a CompileError, got \(error)", file: file, line: line)
    }
    return nil
}
