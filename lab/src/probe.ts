// Runs inside a namespace: GETs each URL (bounded by a timeout) and prints the results
// as JSON. Usage: probe.ts TIMEOUT_MS URL...
import { get } from 'node:http';

const [timeoutText, ...urls] = process.argv.slice(2);
const timeoutMs = Number(timeoutText) || 2000;

function fetchOnce(url: string): Promise<{ url: string; ok: boolean; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ url, ok: res.statusCode === 200, body: body.trim() }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ url, ok: false, body: '', error: e.message }));
  });
}

const results = await Promise.all(urls.map(fetchOnce));
process.stdout.write(JSON.stringify(results));
