// Logs in to the dashboard as a customer in headless Chromium, checks that only the customer's
// tenant shows, downloads a report bundle, and keeps a screenshot.
// Usage: node dashboard.mjs BASE_URL TOKEN TENANT_NAME OTHER_TENANT OUT_DIR
import { chromium } from 'playwright-core';
import path from 'node:path';

const [base, token, tenantName, other, out] = process.argv.slice(2);
const fail = (message) => { console.error(`FAIL ${message}`); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  if (!page.url().endsWith('/login')) fail(`not sent to the login page: ${page.url()}`);
  await page.fill('#token', 'lb_000000000000_wrong');
  await page.click('button[type=submit]');
  if (!(await page.textContent('body')).includes('not valid')) fail('a wrong token was not refused');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('h1');
  const heading = await page.textContent('h1');
  if (heading.trim() !== tenantName) fail(`landed on '${heading}', not '${tenantName}'`);
  const body = await page.textContent('body');
  if (body.includes(other)) fail(`the page shows the other tenant '${other}'`);
  const sources = await page.$$eval('tr[data-source]', (rows) => rows.map((r) => r.dataset.source));
  console.log(`sources: ${sources.join(', ')}`);
  await page.screenshot({ path: path.join(out, 'dashboard.png'), fullPage: true });
  // The other tenant's page is not there for this login.
  const response = await page.goto(`${base}/tenants/${other}`);
  if (response.status() !== 404) fail(`the other tenant's page answered ${response.status()}`);
  await page.goBack();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('a.download:has-text("Bundle for auditors") >> nth=0'),
  ]);
  const file = path.join(out, 'bundle.tar');
  await download.saveAs(file);
  console.log(`downloaded ${download.suggestedFilename()} to ${file}`);
} finally {
  await browser.close();
}
