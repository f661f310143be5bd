"""The Airbyte API client, free of Airflow's task machinery.

Layers, each importing only those above it in this list:

* ``errors``, ``models``: what the client raises and returns;
* ``config``: settings, URL normalisation and checks of arguments;
* ``contracts``: the one mapping of a job to the dicts others read (XCom, asset events);
* ``lineage``: the datasets a job read and wrote, named for OpenLineage;
* ``transport``, ``answers``, ``auth``: one HTTP stack, its error mapping and its auth flow;
* ``api``: the Configuration and Public API contracts, as requests and parsers;
* ``wait``: the poll schedule and the "poll once and decide" step;
* ``core``, ``client``: the operations, sans-I/O, and ``AirbyteClient``/``AsyncAirbyteClient``
  that drive them.

Import from the modules (``from plugins.airbyte_client.client import AirbyteClient``); this
package's ``__init__`` stays empty so importing one layer never loads the others.
"""
