import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('configuration from the environment', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      dataDir: path.resolve('data'),
      databaseUrl: undefined,
      publicUrl: 'http://127.0.0.1:8080',
      logLevel: 'info',
      provisionFile: undefined,
    });
    expect(config.bodyLimit).toBeGreaterThan(1024 * 1024);
  });

  it('reads PORT, HOST, DATA_DIR, DATABASE_URL, PUBLIC_URL, LOG_LEVEL, SENSORCLOUD_PROVISION', () => {
    const config = loadConfig({
      PORT: '9090',
      HOST: '0.0.0.0',
      DATA_DIR: '/var/lib/sensorcloud',
      DATABASE_URL: 'postgres://sc@db:5432/sc',
      PUBLIC_URL: 'https://sensors.example.com',
      LOG_LEVEL: 'warn',
      SENSORCLOUD_PROVISION: '/etc/sensorcloud/provision.yaml',
    });
    expect(config).toMatchObject({
      port: 9090,
      host: '0.0.0.0',
      dataDir: '/var/lib/sensorcloud',
      databaseUrl: 'postgres://sc@db:5432/sc',
      publicUrl: 'https://sensors.example.com',
      logLevel: 'warn',
      provisionFile: '/etc/sensorcloud/provision.yaml',
    });
  });

  it('PUBLIC_URL defaults to http://HOST:PORT', () => {
    expect(loadConfig({ HOST: '10.0.0.5', PORT: '3000' }).publicUrl).toBe('http://10.0.0.5:3000');
    expect(loadConfig({ HOST: '::', PORT: '3000' }).publicUrl).toBe('http://[::]:3000');
    expect(loadConfig({ HOST: '::1' }).publicUrl).toBe('http://[::1]:8080');
  });

  it('PUBLIC_URL is kept in one canonical form (the OAuth issuer is compared byte for byte)', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://Sensors.Example.com/' }).publicUrl).toBe('https://sensors.example.com');
    expect(loadConfig({ PUBLIC_URL: 'https://example.com/sensorcloud/' }).publicUrl).toBe('https://example.com/sensorcloud');
    expect(loadConfig({ PUBLIC_URL: 'https://example.com:443' }).publicUrl).toBe('https://example.com');
  });

  it('empty variables count as unset', () => {
    expect(loadConfig({ PORT: '', HOST: '', DATABASE_URL: '', PUBLIC_URL: '', LOG_LEVEL: '' })).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      databaseUrl: undefined,
      logLevel: 'info',
    });
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ PORT: '-1' }, /PORT/],
    [{ PORT: '80.5' }, /PORT/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ DATABASE_URL: 'mysql://db/x' }, /DATABASE_URL/],
    [{ PUBLIC_URL: 'sensors.example.com' }, /PUBLIC_URL/],
    [{ PUBLIC_URL: 'ftp://example.com' }, /PUBLIC_URL/],
    [{ PUBLIC_URL: 'https://example.com/?x=1' }, /PUBLIC_URL/],
    [{ PUBLIC_URL: 'https://example.com/#top' }, /PUBLIC_URL/],
    [{ BODY_LIMIT: '12' }, /BODY_LIMIT/],
    [{ TRUST_PROXY: 'true' }, /TRUST_PROXY=true would believe X-Forwarded-For from any peer/],
    [{ TRUST_PROXY: '*' }, /TRUST_PROXY/],
    [{ TRUST_PROXY: '11' }, /TRUST_PROXY/],
    [{ TRUST_PROXY: '10.0.0.1/33' }, /TRUST_PROXY/],
    [{ TRUST_PROXY: 'proxy.internal' }, /TRUST_PROXY/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL/],
    [{ DATABASE_REPLICA_URL: 'postgres://replica/x' }, /DATABASE_REPLICA_URL needs DATABASE_URL/],
    [{ DATABASE_URL: 'postgres://db/x', DATABASE_REPLICA_URL: 'replica:5432' }, /DATABASE_REPLICA_URL/],
  ])('%j is refused naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("TRUST_PROXY: off by default, else proxy addresses/CIDRs (and proxy-addr's names) or a hop count, never any peer", () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.5, 192.168.0.0/16,loopback, fd00::/8' }).trustProxy).toEqual([
      '10.0.0.5',
      '192.168.0.0/16',
      'loopback',
      'fd00::/8',
    ]);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
  });

  it('DATABASE_REPLICA_URL: unset, or a postgres:// URL beside DATABASE_URL', () => {
    expect(loadConfig({}).databaseReplicaUrl).toBeUndefined();
    expect(loadConfig({ DATABASE_URL: 'postgres://db/x', DATABASE_REPLICA_URL: 'postgres://replica/x' }).databaseReplicaUrl).toBe(
      'postgres://replica/x',
    );
  });

  it('REDIS_URL: unset, or a redis:// URL', () => {
    expect(loadConfig({}).redisUrl).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/2' }).redisUrl).toBe('redis://127.0.0.1:6379/2');
  });

  it('overrides win over the environment', () => {
    const config = loadConfig({ PORT: '9090', LOG_LEVEL: 'debug' }, { port: 0, logLevel: 'silent', dataDir: '/tmp/x' });
    expect(config).toMatchObject({ port: 0, logLevel: 'silent', dataDir: '/tmp/x', publicUrl: 'http://127.0.0.1:0' });
    expect(loadConfig({ DATA_DIR: '/somewhere' }, { dataDir: undefined }).dataDir).toBeUndefined();
  });
});
