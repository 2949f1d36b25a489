// Runs a tool of the rule-based modes (nft, iptables-restore, ipvsadm, ipset,
// ip) with `input` on stdin and collects its output. Never rejects: a missing
// binary or a failed run is a result with ok false and the tool's words.
import { spawn } from 'node:child_process';

export interface ToolResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

export function runTool(bin: string, args: readonly string[], input?: string): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => resolve({ ok: false, stdout: '', stderr: `${bin}: ${e.message}` }));
    child.on('close', (code) => resolve({ ok: code === 0, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on('error', () => undefined); // an early exit closes the pipe; the exit code tells.
    child.stdin.end(input ?? '');
  });
}
