#!/usr/bin/env python3
"""A Postage-shaped component on pika, for qam's interop tests: `postage_peer.py <queue>`.

It consumes <queue> (declared by the test), reads each body as a Postage message dictionary
(type, name, category, version, fingerprint, content, _reserved), and:
- answers an RPC message (category 'rpc') to its reply_to with a Postage result message
  (type 'result', name 'success', content {value, message}) whose value echoes what it read,
  including the sender's fingerprint from the body and from qam's x-qam-fingerprint header;
- on the command message 'quit' (category 'message'), prints QUIT and exits.
Prints READY once consuming.
"""
import json
import os
import sys

import pika

queue = sys.argv[1]
params = pika.ConnectionParameters(host='127.0.0.1', port=5672, credentials=pika.PlainCredentials('guest', 'guest'))
connection = pika.BlockingConnection(params)
channel = connection.channel()
fingerprint = {'name': 'postage_peer', 'type': 'python', 'pid': os.getpid(), 'host': os.uname()[1], 'user': 'test', 'vhost': '/'}


def on_message(ch, method, properties, body):
    message = json.loads(body)
    headers = properties.headers or {}
    claimed = headers.get('x-qam-fingerprint')
    if isinstance(claimed, bytes):
        claimed = claimed.decode('utf-8')
    if message.get('category') == 'rpc':
        result = {
            'type': 'result',
            'name': 'success',
            'category': 'message',
            'version': 2,
            'fingerprint': fingerprint,
            'content': {
                'value': {
                    'command': message.get('name'),
                    'parameters': message.get('content', {}).get('parameters'),
                    'sender': message.get('fingerprint', {}).get('name'),
                    'header_sender': json.loads(claimed)['name'] if claimed else None,
                },
                'message': '',
            },
            '_reserved': {},
        }
        ch.basic_publish('', properties.reply_to, json.dumps(result),
                         pika.BasicProperties(correlation_id=properties.correlation_id, content_type='application/json'))
    elif message.get('type') == 'command' and message.get('name') == 'quit':
        print('QUIT', flush=True)
        ch.stop_consuming()


channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=True)
print('READY', flush=True)
channel.start_consuming()
connection.close()
