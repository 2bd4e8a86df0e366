// A fast SMTP sink that, like a real smarthost (SES), requires STARTTLS and
// then AUTH before MAIL, for bench/e2e/delivery.py. It throws the messages
// away and prints running counters, one line per event, so the driver can
// time the moment the last message has arrived:
//   PORT <n>                              once, when listening
//   mesg=<m> conn=<c> tls=<t> auth=<a> open=<o>
//                                         after every message, connect, handshake, login, close
// conn/tls/auth count connections, STARTTLS handshakes and logins, which is
// what connection reuse saves; open is the number of connections open now.
//
// usage: node tls_sink.js --cert PEM --key PEM --user NAME --password-file FILE [--port N]
//                         [--greet-delay-ms MS]
// Needs the npm package smtp-server (delivery.py installs it under the build dir
// and sets NODE_PATH).
'use strict';
const fs = require('fs');
const { SMTPServer } = require('smtp-server');

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['cert', 'key', 'user', 'password-file']) {
  if (!args[k]) {
    console.error('tls_sink.js: missing --' + k);
    process.exit(64);
  }
}
const password = fs.readFileSync(args['password-file'], 'utf8').replace(/\r?\n$/, '');

// smtp-server waits a fixed 100 ms before every 220 greeting (to catch clients
// that talk too early), which would make each new connection cost 100 ms of
// the sink's choosing. Greet after --greet-delay-ms instead (default 0; set it
// to model an upstream's round trip). Checked against the version installed.
const { SMTPConnection } = require('smtp-server/lib/smtp-connection.js');
const greetDelay = Number(args['greet-delay-ms'] || 0);
if (!/setTimeout\(\(\) => this\.connectionReady\(\), 100\)/.test(SMTPConnection.prototype.init.toString())) {
  console.error('tls_sink.js: smtp-server changed its connection start; update the greeting patch');
  process.exit(70);
}
SMTPConnection.prototype.init = function () {
  this._setListeners(() => {
    if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
      return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
    }
    setTimeout(() => this.connectionReady(), greetDelay).unref();
  });
};

let mesg = 0, conn = 0, tls = 0, auth = 0, open = 0;
const report = () => process.stdout.write(`mesg=${mesg} conn=${conn} tls=${tls} auth=${auth} open=${open}\n`);

const server = new SMTPServer({
  key: fs.readFileSync(args.key),
  cert: fs.readFileSync(args.cert),
  name: 'tls-sink.localhost',
  authMethods: ['PLAIN', 'LOGIN'],
  authOptional: false,       // MAIL before AUTH: 530
  allowInsecureAuth: false,  // AUTH before STARTTLS: 538
  disableReverseLookup: true,
  logger: false,
  maxClients: 1000,
  onConnect(session, cb) {
    conn++;
    open++;
    report();
    cb();
  },
  onClose() {
    open--;
    report();
  },
  onSecure(socket, session, cb) {
    tls++;
    report();
    cb();
  },
  onAuth(a, session, cb) {
    if (!session.secure) return cb(new Error('STARTTLS first'));
    if (a.username !== args.user || a.password !== password) return cb(new Error('Invalid username or password'));
    auth++;
    report();
    cb(null, { user: a.username });
  },
  onData(stream, session, cb) {
    stream.on('data', () => {});
    stream.on('end', () => {
      mesg++;
      report();
      cb(null, 'Ok: queued');
    });
  },
});
server.on('error', (e) => console.error('tls_sink.js:', e.message));
server.listen(Number(args.port || 0), '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
