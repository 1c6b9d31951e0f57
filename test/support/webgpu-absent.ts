// For a test file whose tests need webgpu: where webgpu does not run, the file still has a suite (vitest
// fails a file without one), which checks that the set-up gives a reason and that webgpu was not required.
import { describe, expect, it } from 'vitest';
import { WEBGPU_NOT_RUN_REASON, WEBGPU_REQUIRED } from '../backends.js';

export function describeWebGpuAbsent(): void {
  describe('webgpu is not tested in this run', () => {
    it('for a stated reason, and it was not required (GRADLENS_REQUIRE_WEBGPU=1 would include it)', () => {
      expect(WEBGPU_REQUIRED).toBe(false);
      expect(WEBGPU_NOT_RUN_REASON).toMatch(/\S/);
    });
  });
}
