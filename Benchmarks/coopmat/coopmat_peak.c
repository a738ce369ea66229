/* coopmat-peak: what the cooperative-matrix units of a Vulkan device give, measured with a kernel that only
 * multiplies fp16 16×16×16 fragments held in registers into fp32 accumulators (VK_NV_cooperative_matrix, the
 * extension FlashMem's gemm_cm.comp uses), so coopmat-bench.sh can state a matmul's TFLOP/s as a share of it.
 *
 *   coopmat-peak [--device N] [--iterations I] [--workgroups G] [--repeats R] [--json FILE] [--dump-spirv FILE]
 *
 * (--dump-spirv writes the kernel's SPIR-V and exits, for spirv-val on a machine without the units.)
 *
 * Each subgroup keeps ACCUMULATORS independent accumulators (enough to cover the units' latency) and runs
 * I iterations of ACCUMULATORS coopMatMulAddNV; the result is stored so nothing is dead code. GPU time from
 * timestamps around one dispatch, best of R; FLOPs = 2·16·16·16 per coopMatMulAdd. The GLSL is compiled at
 * start with shaderc (linked statically: build with build-peak.sh), so the binary needs only libvulkan.so.1.
 */
#include "lab_vulkan.h"
#include <shaderc/shaderc.h>

#define SUBGROUPS 4
#define ACCUMULATORS 8

static const char *kSource =
    "#version 450\n"
    "#extension GL_NV_cooperative_matrix : require\n"
    "#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require\n"
    "#extension GL_KHR_memory_scope_semantics : require\n"
    "#extension GL_KHR_shader_subgroup_basic : require\n"
    "#extension GL_EXT_control_flow_attributes : require\n"
    "layout(local_size_x = 32 * SUBGROUPS) in;\n"
    "layout(constant_id = 0) const uint ITERATIONS = 1024;\n"
    "layout(std430, binding = 0) buffer Out { float y[]; };\n"
    "shared float16_t s[SUBGROUPS * 4 * 256];\n"
    "#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>\n"
    "#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>\n"
    "void main() {\n"
    "    const uint lid = gl_LocalInvocationID.x;\n"
    "    for (uint i = lid; i < SUBGROUPS * 4 * 256; i += 32 * SUBGROUPS) {\n"
    "        s[i] = float16_t(float((i * 7u + gl_WorkGroupID.x) % 13u) / 1024.0);\n"
    "    }\n"
    "    barrier();\n"
    "    const uint base = gl_SubgroupID * 4u * 256u;\n"
    "    HALF a0, a1, b0, b1;\n"
    "    coopMatLoadNV(a0, s, base, 16, false);\n"
    "    coopMatLoadNV(a1, s, base + 256u, 16, false);\n"
    "    coopMatLoadNV(b0, s, base + 512u, 16, false);\n"
    "    coopMatLoadNV(b1, s, base + 768u, 16, false);\n"
    "    ACC c[ACCUMULATORS];\n"
    "    [[unroll]] for (uint j = 0; j < ACCUMULATORS; ++j) { c[j] = ACC(0.0); }\n"
    "    for (uint i = 0; i < ITERATIONS; ++i) {\n"
    "        [[unroll]] for (uint j = 0; j < ACCUMULATORS; j += 4u) {\n"
    "            c[j] = coopMatMulAddNV(a0, b0, c[j]);\n"
    "            c[j + 1u] = coopMatMulAddNV(a1, b0, c[j + 1u]);\n"
    "            c[j + 2u] = coopMatMulAddNV(a0, b1, c[j + 2u]);\n"
    "            c[j + 3u] = coopMatMulAddNV(a1, b1, c[j + 3u]);\n"
    "        }\n"
    "    }\n"
    "    [[unroll]] for (uint j = 1; j < ACCUMULATORS; ++j) { c[0] = c[0] + c[j]; }\n"
    "    uint index = gl_WorkGroupID.x * SUBGROUPS + gl_SubgroupID;\n"
    "    coopMatStoreNV(c[0], y, (index % 64u) * 256u, 16, false);\n"
    "}\n";

#define CHECK(x) LAB_CHECK("coopmat-peak", x)

static int parse_int(const char *s) { return (int)strtol(s, NULL, 10); }

int main(int argc, char **argv) {
    int device_index = -1, iterations = 2048, workgroups = 0, repeats = 5;
    const char *json = NULL, *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) device_index = parse_int(argv[++i]);
        else if (!strcmp(argv[i], "--iterations") && i + 1 < argc) iterations = parse_int(argv[++i]);
        else if (!strcmp(argv[i], "--workgroups") && i + 1 < argc) workgroups = parse_int(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = parse_int(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else if (!strcmp(argv[i], "--dump-spirv") && i + 1 < argc) dump = argv[++i];
        else { fprintf(stderr, "usage: coopmat-peak [--device N] [--iterations I] [--workgroups G] "
                               "[--repeats R] [--json FILE] [--dump-spirv FILE]\n"); return 2; }
    }

    /* GLSL → SPIR-V */
    shaderc_compiler_t compiler = shaderc_compiler_initialize();
    shaderc_compile_options_t options = shaderc_compile_options_initialize();
    shaderc_compile_options_set_target_env(options, shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_2);
    /* spirv-opt 2023.1 crashes simplifying this loop of cooperative-matrix values; the driver optimizes anyway. */
    shaderc_compile_options_set_optimization_level(options, shaderc_optimization_level_zero);
    char subgroups[8], accumulators[8];
    snprintf(subgroups, sizeof subgroups, "%d", SUBGROUPS);
    snprintf(accumulators, sizeof accumulators, "%d", ACCUMULATORS);
    shaderc_compile_options_add_macro_definition(options, "SUBGROUPS", 9, subgroups, strlen(subgroups));
    shaderc_compile_options_add_macro_definition(options, "ACCUMULATORS", 12, accumulators, strlen(accumulators));
    shaderc_compilation_result_t spv = shaderc_compile_into_spv(compiler, kSource, strlen(kSource),
                                                                shaderc_glsl_compute_shader, "peak.comp", "main", options);
    if (shaderc_result_get_compilation_status(spv) != shaderc_compilation_status_success) {
        fprintf(stderr, "coopmat-peak: shader: %s\n", shaderc_result_get_error_message(spv));
        return 1;
    }
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f) { perror(dump); return 1; }
        fwrite(shaderc_result_get_bytes(spv), 1, shaderc_result_get_length(spv), f);
        fclose(f);
        return 0;
    }

    LabDevice lab = lab_open("coopmat-peak", device_index, 1);
    VkPhysicalDevice physical = lab.physical;
    VkDevice device = lab.device;
    VkPhysicalDeviceProperties props = lab.props;

    /* output buffer (64 fragments of fp32) */
    VkDeviceSize size = 64 * 256 * 4;
    VkBufferCreateInfo bci = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = size;
    bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
    VkBuffer buffer;
    CHECK(vkCreateBuffer(device, &bci, NULL, &buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device, buffer, &req);
    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(physical, &mem);
    uint32_t type = 0;
    for (uint32_t i = 0; i < mem.memoryTypeCount; i++)
        if ((req.memoryTypeBits & (1u << i)) && (mem.memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)) {
            type = i;
            break;
        }
    VkMemoryAllocateInfo mai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = type;
    VkDeviceMemory memory;
    CHECK(vkAllocateMemory(device, &mai, NULL, &memory));
    CHECK(vkBindBufferMemory(device, buffer, memory, 0));

    /* pipeline */
    VkDescriptorSetLayoutBinding binding = {0, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo dslci = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dslci.bindingCount = 1;
    dslci.pBindings = &binding;
    VkDescriptorSetLayout dsl;
    CHECK(vkCreateDescriptorSetLayout(device, &dslci, NULL, &dsl));
    VkPipelineLayoutCreateInfo plci = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    plci.setLayoutCount = 1;
    plci.pSetLayouts = &dsl;
    VkPipelineLayout layout;
    CHECK(vkCreatePipelineLayout(device, &plci, NULL, &layout));
    VkShaderModuleCreateInfo smci = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smci.codeSize = shaderc_result_get_length(spv);
    smci.pCode = (const uint32_t *)shaderc_result_get_bytes(spv);
    VkShaderModule module;
    CHECK(vkCreateShaderModule(device, &smci, NULL, &module));
    uint32_t iters = (uint32_t)iterations;
    VkSpecializationMapEntry entry = {0, 0, 4};
    VkSpecializationInfo spec = {1, &entry, 4, &iters};
    VkComputePipelineCreateInfo cpci = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    cpci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpci.stage.module = module;
    cpci.stage.pName = "main";
    cpci.stage.pSpecializationInfo = &spec;
    cpci.layout = layout;
    VkPipeline pipeline;
    CHECK(vkCreateComputePipelines(device, VK_NULL_HANDLE, 1, &cpci, NULL, &pipeline));

    VkDescriptorPoolSize pool_size = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1};
    VkDescriptorPoolCreateInfo dpci = {VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpci.maxSets = 1;
    dpci.poolSizeCount = 1;
    dpci.pPoolSizes = &pool_size;
    VkDescriptorPool pool;
    CHECK(vkCreateDescriptorPool(device, &dpci, NULL, &pool));
    VkDescriptorSetAllocateInfo dsai = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    dsai.descriptorPool = pool;
    dsai.descriptorSetCount = 1;
    dsai.pSetLayouts = &dsl;
    VkDescriptorSet set;
    CHECK(vkAllocateDescriptorSets(device, &dsai, &set));
    VkDescriptorBufferInfo dbi = {buffer, 0, size};
    VkWriteDescriptorSet write = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    write.dstSet = set;
    write.descriptorCount = 1;
    write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    write.pBufferInfo = &dbi;
    vkUpdateDescriptorSets(device, 1, &write, 0, NULL);

    if (workgroups <= 0) workgroups = 132 * 16;  /* many waves on a 132-SM part */
    double best = 1e30;
    for (int r = 0; r < repeats + 1; r++) {  /* the first is a warm-up */
        lab_begin(&lab);
        vkCmdBindPipeline(lab.cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
        vkCmdBindDescriptorSets(lab.cb, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
        vkCmdWriteTimestamp(lab.cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, lab.timestamps, 0);
        vkCmdDispatch(lab.cb, (uint32_t)workgroups, 1, 1);
        vkCmdWriteTimestamp(lab.cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, lab.timestamps, 1);
        lab_submit(&lab);
        double seconds = lab_elapsed_ms(&lab) * 1e-3;
        if (r > 0 && seconds < best) best = seconds;
    }
    double flops = 2.0 * 16 * 16 * 16 * ACCUMULATORS * (double)iterations * SUBGROUPS * (double)workgroups;
    double tflops = flops / best / 1e12;
    printf("coopmat-peak: %s: %.1f TFLOP/s fp16xfp16->fp32 (VK_NV_cooperative_matrix 16x16x16, %d workgroups x %d "
           "subgroups x %d accumulators, %d iterations, best of %d: %.3f ms)\n", props.deviceName, tflops, workgroups,
           SUBGROUPS, ACCUMULATORS, iterations, repeats, best * 1e3);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"device\": \"%s\", \"tflops\": %.3f, \"ms\": %.6f, \"workgroups\": %d, \"subgroups\": %d, "
                       "\"accumulators\": %d, \"iterations\": %d, \"repeats\": %d}\n", props.deviceName, tflops,
                    best * 1e3, workgroups, SUBGROUPS, ACCUMULATORS, iterations, repeats);
            fclose(f);
        }
    }
    lab_close(&lab);
    shaderc_result_release(spv);
    shaderc_compiler_release(compiler);
    return 0;
}
