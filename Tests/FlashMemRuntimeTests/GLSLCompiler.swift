import CShaderc
import XCTest

/// Compiles GLSL compute shaders to SPIR-V with libshaderc, for bundles built by hand in tests.
enum GLSLCompiler {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func compile(_ source: String, name: String) throws -> [UInt32] {
        guard let compiler = shaderc_compiler_initialize(), let options = shaderc_compile_options_initialize() else {
            throw Failure(description: "shaderc init failed")
        }
        defer {
            shaderc_compile_options_release(options)
            shaderc_compiler_release(compiler)
        }
        shaderc_compile_options_set_target_env(options, shaderc_target_env_vulkan,
                                               UInt32(shaderc_env_version_vulkan_1_2.rawValue))
        shaderc_compile_options_set_warnings_as_errors(options)
        let result = shaderc_compile_into_spv(compiler, source, source.utf8.count, shaderc_glsl_compute_shader,
                                              name, "main", options)
        defer { shaderc_result_release(result) }
        guard shaderc_result_get_compilation_status(result) == shaderc_compilation_status_success else {
            throw Failure(description: "\(name): " + String(cString: shaderc_result_get_error_message(result)))
        }
        let length = shaderc_result_get_length(result)
        let bytes = UnsafeRawBufferPointer(start: shaderc_result_get_bytes(result), count: length)
        return (0..<(length / 4)).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) }
    }
}
