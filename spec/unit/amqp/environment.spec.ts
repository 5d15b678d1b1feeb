import { resolveConnection } from '../../../lib/amqp/connection.js';
import { silentLogger } from '../../../lib/index.js';

const names = ['QAM_URL', 'QAM_HOST', 'QAM_PORT', 'QAM_USER', 'QAM_PASSWORD', 'QAM_VHOST'];
const saved = new Map(names.map((name) => [name, process.env[name]]));

function withEnvironment(values: Record<string, string>): void {
  for (const name of names) delete process.env[name];
  Object.assign(process.env, values);
}

afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const urlOf = (options: Parameters<typeof resolveConnection>[0]): string => resolveConnection(options, silentLogger)[0].url;

describe('connection configuration from the environment', () => {
  it('reads QAM_HOST, QAM_PORT, QAM_USER, QAM_PASSWORD and QAM_VHOST', () => {
    withEnvironment({ QAM_HOST: 'rabbit', QAM_PORT: '5673', QAM_USER: 'olivia', QAM_PASSWORD: 'p@ss', QAM_VHOST: 'dev' });
    expect(urlOf({})).toBe('amqp://olivia:p%40ss@rabbit:5673/dev');
  });

  it('lets an explicit option win over the environment, field by field', () => {
    withEnvironment({ QAM_HOST: 'rabbit', QAM_USER: 'olivia', QAM_VHOST: 'dev' });
    expect(urlOf({ vhost: 'prod', username: 'carl' })).toBe('amqp://carl:guest@rabbit:5672/prod');
  });

  it('ignores the environment beside the url option, and empty variables', () => {
    withEnvironment({ QAM_HOST: 'rabbit', QAM_PORT: '' });
    expect(urlOf({ url: 'amqp://a:b@host:1234/v' })).toBe('amqp://a:b@host:1234/v');
    withEnvironment({ QAM_HOST: '', QAM_URL: 'amqp://a:b@host:1234/v' });
    expect(urlOf({})).toBe('amqp://a:b@host:1234/v');
  });

  it('names the variable that is wrong', () => {
    withEnvironment({ QAM_PORT: 'http' });
    expect(() => urlOf({})).toThrow(TypeError);
    expect(() => urlOf({})).toThrow('QAM_PORT');
    withEnvironment({ QAM_PORT: '70000' });
    expect(() => urlOf({})).toThrow('QAM_PORT');
    withEnvironment({ QAM_URL: 'amqp://h', QAM_VHOST: 'dev' });
    expect(() => urlOf({})).toThrow('QAM_URL and QAM_VHOST');
  });
});
