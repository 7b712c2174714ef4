// Pack no-server-file-access: nothing that reads or writes the database server's files or reaches
// out from it (COPY file/PROGRAM, pg_read_file & co., lo_import/lo_export, adminpack, dblink).
import type { SqlPack } from './types.ts';

export const noServerFileAccess: SqlPack = {
  name: 'no-server-file-access',
  description: 'Deny COPY to/from server files or programs, pg_read_file/pg_read_binary_file/pg_ls_*/pg_stat_file, lo_import/lo_export, pg_file_write, dblink*.',
  rules: [
    {
      id: 'no-server-file-access.flags',
      action: 'deny',
      reason: 'server-file-access',
      message: "access to the database server's files, programs or other servers is not allowed",
      match: { flags: ['serverFileAccess', 'copyProgram', 'remoteAccess'] },
    },
  ],
  examples: [
    { sql: "SELECT pg_read_file('/etc/passwd')", expect: 'deny', reason: 'server-file-access', why: 'reads a server file' },
    { sql: "SELECT pg_catalog.pg_ls_dir('.')", expect: 'deny', reason: 'server-file-access', why: 'lists a server directory' },
    { sql: "SELECT lo_export(16384, '/tmp/x')", expect: 'deny', reason: 'server-file-access', why: 'writes a server file' },
    { sql: "COPY users TO '/tmp/users.csv'", expect: 'deny', reason: 'server-file-access', why: 'COPY to a server file' },
    { sql: "COPY users FROM PROGRAM 'curl http://x'", expect: 'deny', reason: 'server-file-access', why: 'runs a program on the server' },
    { sql: "SELECT * FROM dblink('host=10.0.0.1', 'select 1') AS t(x int)", expect: 'deny', reason: 'server-file-access', why: 'connects out' },
    { sql: 'COPY users TO STDOUT', expect: 'allow', why: 'the client receives the data' },
    { sql: 'COPY users FROM STDIN', expect: 'allow', why: "psql's \\copy sends COPY FROM STDIN" },
  ],
};
