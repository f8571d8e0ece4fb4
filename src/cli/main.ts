import { Command, CommanderError, Option } from 'commander';
import { ConfigError } from '../config/config.js';
import { ProvisioningError } from '../provisioning/load.js';
import { migrateCommand, provisionCommand, serveCommand, setupCommand, userCreateCommand } from './commands.js';
import { CliError } from './io.js';
import { keysListCommand, keysRotateCommand } from './keys.js';
import { apiKeyCreateCommand, clientCreateCommand } from './oauth-admin.js';
import { deviceCreateCommand, deviceTokenRotateCommand } from './devices.js';
import {
  sqlAccessDisableCommand,
  sqlAccessEnableCommand,
  sqlAccessRotateCommand,
  sqlAccessSetCidrsCommand,
  sqlAccessShowCommand,
} from './sql-access.js';

/** Exit codes: 0 success, 1 the command failed, 2 the command line itself was wrong. */
export const EXIT_USAGE = 2;

function buildProgram(): Command {
  const program = new Command('sensorcloud')
    .description('Self-hostable sensor-monitoring cloud. Configuration comes from the environment (see README).')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve')
    .description('run the HTTP server (migrates the database first)')
    .addOption(new Option('--provision <file>', 'apply a YAML or JSON provisioning file at start').env('SENSORCLOUD_PROVISION'))
    .action(serveCommand);

  program
    .command('demo')
    .description('run the server with a demo organization and simulated sensors streaming readings until stopped')
    .addOption(new Option('--transport <transport>', 'how the sensors send').choices(['mqtt', 'http']).default('mqtt'))
    .option('--interval <ms>', 'milliseconds between readings of each sensor', '1000')
    // Loaded when run: it brings MQTT.js, which no other command needs.
    .action(async (options: { transport: 'mqtt' | 'http'; interval: string }) => (await import('./demo.js')).demoCommand(options));

  program.command('migrate').description('apply pending database migrations and exit').action(migrateCommand);

  program
    .command('provision')
    .description('apply a YAML or JSON provisioning file (format: docs/provisioning.md) idempotently, in one transaction')
    .argument('<file>')
    .action(provisionCommand);

  program
    .command('setup')
    .description('create the first organization and its owner; without options, print a one-time setup link')
    .option('--org-name <name>', 'organization name')
    .option('--org-slug <slug>', 'organization slug')
    .option('--email <email>', "owner's email")
    .option('--name <name>', "owner's name")
    .option('--password-stdin', 'read the password from standard input (otherwise SENSORCLOUD_PASSWORD, or a prompt)')
    .action(setupCommand);

  const user = program.command('user').description('manage users');
  user
    .command('create')
    .description('create a user in an organization, or update their role')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--email <email>', 'email address')
    .addOption(new Option('--role <role>', 'role in the organization').choices(['owner', 'admin', 'member', 'viewer']).default('member'))
    .option('--name <name>', 'display name')
    .option('--password-stdin', 'read the password from standard input (otherwise SENSORCLOUD_PASSWORD, or a prompt)')
    .option('--no-password', 'create the user without a password')
    .action(userCreateCommand);

  const keys = program.command('keys').description('signing keys of JWT access tokens');
  keys
    .command('rotate')
    .description('make a new current signing key; older keys stay published until their tokens expire')
    .action(keysRotateCommand);
  keys.command('list').description('list the published signing keys').action(keysListCommand);

  const device = program.command('device').description('manage devices and their tokens');
  device
    .command('create')
    .description('create a device; prints its device token (sc_dev_…) once')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--serial <serial>', 'serial number, unique in the organization')
    .requiredOption('--name <name>', 'display name')
    .option('--location <slug>', 'location slug')
    .action(deviceCreateCommand);
  const deviceToken = device.command('token').description("a device's token");
  deviceToken
    .command('rotate')
    .description('replace the device token; prints the new one once, the old one stops working')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--serial <serial>', 'device serial')
    .action(deviceTokenRotateCommand);

  const client = program.command('client').description('manage OAuth clients');
  client
    .command('create')
    .description('register an OAuth client; prints its generated secret once (confidential clients)')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--client-id <id>', 'the public client_id')
    .requiredOption(
      '--grant-types <list>',
      'comma-separated: authorization_code, client_credentials, password, refresh_token, urn:ietf:params:oauth:grant-type:device_code',
    )
    .requiredOption('--scopes <list>', 'comma-separated allowed scopes (aliases *, me, app, basic allowed)')
    .option('--name <name>', 'application name shown on the consent page')
    .option('--redirect-uri <uri...>', 'registered redirect URIs (exact match)')
    .option('--public', 'a public client (no secret; PKCE required)')
    .option('--secret-stdin', 'read the client secret from standard input instead of generating one')
    .addOption(new Option('--token-format <format>', 'access token format').choices(['opaque', 'jwt']).default('opaque'))
    .option('--access-token-ttl <seconds>', 'access token lifetime (default 3600)')
    .option('--refresh-token-ttl <seconds>', 'refresh token lifetime')
    .option('--bound-user <email>', 'client_credentials tokens act as this user, read-only (SmartSense)')
    .addOption(
      new Option('--user-auth <mode>', 'how the password grant identifies users')
        .choices(['password', 'external_authentication_token'])
        .default('password'),
    )
    .option('--privacy-policy-url <url>', 'privacy policy shown on the consent page')
    .option('--resource-server', 'may introspect tokens of other clients of its organization')
    .action(clientCreateCommand);
  const apiKey = program.command('api-key').description('manage API keys');
  apiKey
    .command('create')
    .description('create an API key (sk_live_…); prints it once')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--name <name>', 'key name, unique among active keys')
    .requiredOption('--scopes <list>', "comma-separated scopes, all held by the creator's role")
    .requiredOption('--created-by <email>', 'the member the key acts as')
    .option('--expires-at <date-time>', 'RFC 3339 expiry')
    .action(apiKeyCreateCommand);

  const sqlAccess = program.command('sql-access').description("an organization's read-only PostgreSQL login (PostgreSQL only)");
  const cidrs = '--cidrs <list>';
  const cidrsHelp = 'comma-separated address ranges the login is accepted from (203.0.113.0/24, 2001:db8::/48, 198.51.100.7)';
  sqlAccess
    .command('enable')
    .description('create the login; prints its password once')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption(cidrs, cidrsHelp)
    .action(sqlAccessEnableCommand);
  sqlAccess
    .command('show')
    .description('show the login (never its password)')
    .requiredOption('--org <slug>', 'organization slug')
    .action(sqlAccessShowCommand);
  sqlAccess
    .command('set-cidrs')
    .description('replace the address ranges')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption(cidrs, cidrsHelp)
    .action(sqlAccessSetCidrsCommand);
  sqlAccess
    .command('rotate')
    .description('a new password, printed once; the old one stops working and open sessions end')
    .requiredOption('--org <slug>', 'organization slug')
    .action(sqlAccessRotateCommand);
  sqlAccess
    .command('disable')
    .description('drop the login and end its sessions')
    .requiredOption('--org <slug>', 'organization slug')
    .action(sqlAccessDisableCommand);

  // Every command inherits the same strict parsing and exit behaviour.
  for (const command of [
    program,
    ...program.commands,
    ...user.commands,
    ...keys.commands,
    ...client.commands,
    ...apiKey.commands,
    ...device.commands,
    ...deviceToken.commands,
    ...sqlAccess.commands,
  ]) {
    command.exitOverride().showHelpAfterError();
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // `--help` and `help` exit 0; help shown because the command line was incomplete (`sensorcloud
      // user` without its subcommand) is a usage error like any other.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      if (error.code === 'commander.help') return error.exitCode === 0 ? 0 : EXIT_USAGE;
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof ProvisioningError) {
      process.stderr.write(`provisioning failed, nothing was applied:\n${error.message}\n`);
      return 1;
    }
    if (error instanceof CliError) {
      process.stderr.write(`error: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`error: ${(error as Error).stack ?? error}\n`);
    return 1;
  }
}
