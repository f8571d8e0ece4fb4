// `sensorcloud` run from source (bin/sensorcloud.js runs the compiled dist/ instead).
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
