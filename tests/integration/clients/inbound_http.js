// inbound_http.js -- a plain node HTTP server for the inbound tests (run
// under tlsshim; it knows nothing of TLS).  Usage: node inbound_http.js PORT LOG
// Listens on 127.0.0.1:PORT; for each request appends to LOG the line
//   req ADDR PORT METHOD URL
// (the peer as node sees it: socket.remoteAddress/remotePort) and answers
// "hello from node URL\n".  Plain CommonJS, no dependencies: node 18 and 20.
'use strict';
const fs = require('fs');
const http = require('http');

const port = Number(process.argv[2]);
const log = process.argv[3];

const server = http.createServer((req, res) => {
  const s = req.socket;
  fs.appendFileSync(log, `req ${s.remoteAddress} ${s.remotePort} ${req.method} ${req.url}\n`);
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(`hello from node ${req.url}\n`);
});
server.listen(port, '127.0.0.1');
