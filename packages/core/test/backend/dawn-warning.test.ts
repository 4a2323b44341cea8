import { describe, expect, it } from 'vitest';
import { firstDawnWarning } from '../../src/backend/webgpu-device.js';

describe('firstDawnWarning', () => {
  it("prefers Dawn's own warning over lines the libraries under it print first", () => {
    const stderr = [
      'error: XDG_RUNTIME_DIR is invalid or not set in the environment.',
      'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.',
      '    at InitializeImpl (../../third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)',
      '',
    ].join('\n');
    expect(firstDawnWarning(stderr)).toBe('Vulkan shaderUniform*ArrayDynamicIndexing required.');
  });

  it('falls back to the first line that is not a stack frame, and to nothing for no output', () => {
    expect(firstDawnWarning('  - note\nsomething failed\n    at x (y.cpp:1)\n')).toBe('something failed');
    expect(firstDawnWarning('\n\n')).toBeUndefined();
  });
});
