// Starts the SigV4-checking S3 server on loopback for tests and the demo.
// Usage: node s3-server.js PORT DIR
'use strict';
const S3rver = require('@20minutes/s3rver');
const port = Number(process.argv[2]);
const directory = process.argv[3];
if (!port || !directory) {
  console.error('usage: s3-server.js PORT DIR');
  process.exit(2);
}
new S3rver({ address: '127.0.0.1', port, directory, silent: true })
  .run()
  .then(() => console.log(`s3 listening on 127.0.0.1:${port}`))
  .catch((e) => { console.error(`s3: ${e.message}`); process.exit(1); });
