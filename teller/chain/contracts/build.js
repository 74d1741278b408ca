// Compile DemoToken.sol offline with the npm `solc` package (solc-js) into DemoToken.json
// (ABI + creation bytecode + the source's sha256, so a test can tell a stale artifact).
// Run from anywhere:  node teller/chain/contracts/build.js
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const dir = __dirname;
const sourceName = 'DemoToken.sol';
const source = fs.readFileSync(path.join(dir, sourceName), 'utf8');
const input = {
  language: 'Solidity',
  sources: { [sourceName]: { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const contract = output.contracts[sourceName].DemoToken;
const artifact = {
  contractName: 'DemoToken',
  compiler: 'solc-js ' + solc.version(),
  sourceSha256: crypto.createHash('sha256').update(source).digest('hex'),
  abi: contract.abi,
  bytecode: '0x' + contract.evm.bytecode.object,
};
fs.writeFileSync(path.join(dir, 'DemoToken.json'), JSON.stringify(artifact, null, 2) + '\n');
console.log('wrote DemoToken.json (' + (artifact.bytecode.length / 2 - 1) + ' bytes of bytecode)');
