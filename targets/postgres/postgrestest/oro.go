package postgrestest

// oroTables is an OroCommerce-like database: customers, customer users,
// addresses, orders, order addresses, payment transactions, users and
// emails, with bytea, jsonb, numeric, timestamptz, arrays, NULLs and
// non-ASCII text; a view, a sequence, foreign keys and indexes.
const oroTables = `
CREATE TABLE oro_user (id serial PRIMARY KEY, username text NOT NULL UNIQUE, email text, first_name text, last_name text,
  roles text[], salt bytea, last_login timestamptz, enabled boolean NOT NULL DEFAULT true);
CREATE TABLE oro_customer (id bigserial PRIMARY KEY, name text NOT NULL, parent_id bigint REFERENCES oro_customer(id),
  owner_id int REFERENCES oro_user(id), payment_term numeric(12,4), attrs jsonb, created_at timestamptz NOT NULL);
CREATE TABLE oro_customer_user (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES oro_customer(id),
  email text NOT NULL, first_name text, last_name text, phone text, password bytea, tags text[], confirmed boolean,
  birthday date, created_at timestamptz);
CREATE TABLE oro_customer_address (id bigserial PRIMARY KEY, customer_id bigint REFERENCES oro_customer(id),
  street text, city text, postal_code varchar(20), country_code char(2), phone text, types int[]);
CREATE TABLE oro_order (id bigserial PRIMARY KEY, identifier text UNIQUE, customer_user_id bigint REFERENCES oro_customer_user(id),
  subtotal numeric(19,4), total numeric(19,4), currency char(3), status text, meta jsonb, po_number text,
  created_at timestamptz NOT NULL, ship_until date);
CREATE TABLE oro_order_address (id bigserial PRIMARY KEY, order_id bigint REFERENCES oro_order(id), kind text,
  first_name text, last_name text, street text, city text, postal_code text, phone text);
CREATE TABLE oro_payment_transaction (id bigserial PRIMARY KEY, order_id bigint REFERENCES oro_order(id), action text,
  amount numeric(19,4), currency char(3), successful boolean, request jsonb, response jsonb, reference text,
  raw bytea, created_at timestamptz);
CREATE TABLE oro_email (id bigserial PRIMARY KEY, subject text, from_name text, to_addresses text[], body text,
  headers jsonb, sent_at timestamptz, flags smallint[]);
CREATE INDEX ON oro_order (customer_user_id, created_at);
CREATE INDEX ON oro_customer_user (lower(email));
CREATE SEQUENCE oro_invoice_seq START 1000;
CREATE VIEW oro_order_totals AS SELECT customer_user_id, count(*) AS n, sum(total) AS total FROM oro_order GROUP BY 1;
COMMENT ON TABLE oro_order IS 'Bestellungen — commandes';

INSERT INTO oro_user (username, email, first_name, last_name, roles, salt, last_login, enabled)
SELECT 'admin' || g, 'admin' || g || '@example.com', (ARRAY['Zoë','José','Łukasz','美咲',NULL])[1 + g % 5], 'Müller',
  ARRAY['ROLE_ADMIN', 'ROLE_' || g], decode(md5(g::text), 'hex'), CASE WHEN g % 3 = 0 THEN NULL ELSE timestamptz '2026-01-01 10:00+01' + g * interval '1 hour' END, g % 7 <> 0
FROM generate_series(1, 20) g;
INSERT INTO oro_customer (name, parent_id, owner_id, payment_term, attrs, created_at)
SELECT 'Customer ' || g || ' GmbH & Co. „KG“', NULL, 1 + g % 20, CASE WHEN g % 4 = 0 THEN NULL ELSE g / 7.0 END,
  jsonb_build_object('tier', g % 3, 'tags', jsonb_build_array('b2b', 'ünï'), 'note', CASE WHEN g % 5 = 0 THEN NULL ELSE 'x' || g END),
  timestamptz '2025-06-01 00:00Z' + g * interval '37 minutes'
FROM generate_series(1, 300) g;
UPDATE oro_customer SET parent_id = id - 1 WHERE id % 10 = 0;
INSERT INTO oro_customer_user (customer_id, email, first_name, last_name, phone, password, tags, confirmed, birthday, created_at)
SELECT 1 + g % 300, 'user' || g || '@shop.example', 'Jöhn' || g, E'O''Brien\t' || g, '+49 30 ' || (1000000 + g),
  decode(repeat(md5(g::text), 2), 'hex') || '\x00ff'::bytea, ARRAY['a', NULL, 'c' || g], CASE WHEN g % 3 = 0 THEN NULL ELSE g % 2 = 0 END,
  date '1970-01-01' + g, now() - g * interval '1 day'
FROM generate_series(1, 2000) g;
INSERT INTO oro_customer_address (customer_id, street, city, postal_code, country_code, phone, types)
SELECT 1 + g % 300, g || E' Hauptstraße\n2. OG', 'Zürich', lpad(g::text, 5, '0'), 'CH', NULL, ARRAY[1, g % 3]
FROM generate_series(1, 900) g;
INSERT INTO oro_order (identifier, customer_user_id, subtotal, total, currency, status, meta, po_number, created_at, ship_until)
SELECT 'SO-' || g, 1 + g % 2000, g * 1.2345, g * 1.2345 * 1.19, 'EUR', (ARRAY['open','shipped','closed'])[1 + g % 3],
  jsonb_build_object('lines', g % 9, 'weights', jsonb_build_array(1.5, 2, NULL)), CASE WHEN g % 2 = 0 THEN 'PO ' || g END,
  timestamptz '2026-03-01 12:00:00.123456+00' + g * interval '13 minutes', NULL
FROM generate_series(1, 5000) g;
INSERT INTO oro_order_address (order_id, kind, first_name, last_name, street, city, postal_code, phone)
SELECT 1 + g / 2, CASE WHEN g % 2 = 0 THEN 'billing' ELSE 'shipping' END, 'Ana', 'Ñúñez', 'Calle ' || g, 'Málaga', '29' || g, '+34 ' || g
FROM generate_series(0, 9999) g;
INSERT INTO oro_payment_transaction (order_id, action, amount, currency, successful, request, response, reference, raw, created_at)
SELECT 1 + g % 5000, 'charge', g * 0.01, 'EUR', g % 11 <> 0, jsonb_build_object('card', '4111********1111'), NULL, md5(g::text),
  CASE WHEN g % 2 = 0 THEN gen_random_bytes_stub(g) END, now()
FROM generate_series(1, 4000) g;
INSERT INTO oro_email (subject, from_name, to_addresses, body, headers, sent_at, flags)
SELECT 'Ihre Bestellung SO-' || g || ' 🎉', 'Shop', ARRAY['user' || g || '@shop.example', 'cc@example.com'],
  repeat('Lorem ipsum “quoted” \ backslash ', 1 + g % 20), jsonb_build_object('X-Id', g), now(), ARRAY[g % 2, 0]::smallint[]
FROM generate_series(1, 1500) g;
SELECT setval('oro_invoice_seq', 1234);
`

// stub for random bytes without pgcrypto: deterministic bytea of length n % 64
const oroFuncs = `CREATE FUNCTION gen_random_bytes_stub(n int) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT decode(substr(repeat(md5(n::text), 4), 1, 2 * (n % 64)), 'hex') $$;`

// OroSchema creates an OroCommerce-like database (see oroTables) with the
// function its defaults use.
const OroSchema = oroFuncs + oroTables
