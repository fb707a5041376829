// Package oroshop generates a deterministic OroCommerce-like PostgreSQL
// database (the tables and personal columns of OroCommerce 5/6, much
// simplified) for tests of backups and sanitized exports. The same Rows
// give the same rows on every server.
package oroshop

import (
	"fmt"
	"strings"
)

// Tables lists the generated tables in creation order.
func Tables() []string {
	return []string{"oro_user", "oro_customer", "oro_customer_user", "oro_customer_address", "oro_customer_user_address",
		"oro_order", "oro_order_address", "oro_payment_transaction", "oro_email", "oro_email_address", "oro_audit", "oro_product"}
}

const schema = `
CREATE TABLE oro_user (id serial PRIMARY KEY, username varchar(255) NOT NULL UNIQUE, email varchar(255) NOT NULL UNIQUE,
  first_name varchar(255), middle_name varchar(255), last_name varchar(255), phone varchar(255), password varchar(255) NOT NULL,
  salt varchar(255), enabled boolean NOT NULL DEFAULT true, last_login timestamp(0));
CREATE TABLE oro_customer (id serial PRIMARY KEY, parent_id int REFERENCES oro_customer(id), name varchar(255) NOT NULL,
  owner_id int REFERENCES oro_user(id), created_at timestamp(0) NOT NULL);
CREATE TABLE oro_customer_user (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES oro_customer(id),
  username varchar(255) NOT NULL UNIQUE, email varchar(255) NOT NULL, email_lowercase varchar(255) NOT NULL,
  name_prefix varchar(255), first_name varchar(255) NOT NULL, middle_name varchar(255), last_name varchar(255) NOT NULL,
  name_suffix varchar(255), birthday date, password varchar(255) NOT NULL, salt varchar(255), confirmation_token varchar(255),
  enabled boolean NOT NULL, created_at timestamp(0) NOT NULL);
CREATE TABLE oro_customer_address (id serial PRIMARY KEY, system_org_id int REFERENCES oro_customer(id), label varchar(255),
  street varchar(500), street2 varchar(500), city varchar(255), postal_code varchar(255), organization varchar(255),
  first_name varchar(255), last_name varchar(255), phone varchar(255), country_code varchar(2));
CREATE TABLE oro_customer_user_address (id serial PRIMARY KEY, system_user_id int REFERENCES oro_customer_user(id),
  street varchar(500), street2 varchar(500), city varchar(255), postal_code varchar(255), organization varchar(255),
  first_name varchar(255), last_name varchar(255), phone varchar(255), country_code varchar(2));
CREATE TABLE oro_order (id serial PRIMARY KEY, identifier varchar(255) UNIQUE, customer_id int REFERENCES oro_customer(id),
  customer_user_id int REFERENCES oro_customer_user(id), po_number varchar(255), customer_notes text,
  subtotal_value numeric(19,4), total_value numeric(19,4), currency varchar(3), created_at timestamp(0) NOT NULL);
CREATE TABLE oro_order_address (id serial PRIMARY KEY, order_id int REFERENCES oro_order(id), kind varchar(16),
  street varchar(500), street2 varchar(500), city varchar(255), postal_code varchar(255), organization varchar(255),
  first_name varchar(255), last_name varchar(255), phone varchar(255), country_code varchar(2));
CREATE TABLE oro_payment_transaction (id serial PRIMARY KEY, entity_identifier int REFERENCES oro_order(id), action varchar(255),
  reference varchar(255), access_identifier varchar(255), access_token varchar(255), amount numeric(19,4),
  request text, response text, transaction_options text, successful boolean);
CREATE TABLE oro_email (id serial PRIMARY KEY, subject varchar(998), from_name varchar(320), sent timestamp(0), body text);
CREATE TABLE oro_email_address (id serial PRIMARY KEY, email varchar(255) NOT NULL, owner_user_id int REFERENCES oro_user(id));
CREATE TABLE oro_audit (id serial PRIMARY KEY, action varchar(8), object_class varchar(255), object_name varchar(255),
  logged_at timestamp(0), data text);
CREATE TABLE oro_product (id serial PRIMARY KEY, sku varchar(255) NOT NULL UNIQUE, name varchar(255), description text);
CREATE INDEX idx_oro_order_cu ON oro_order (customer_user_id, created_at);
CREATE INDEX idx_oro_cu_email ON oro_customer_user (email_lowercase);
CREATE VIEW oro_order_totals AS SELECT customer_user_id, count(*) AS n, sum(total_value) AS total FROM oro_order GROUP BY 1;
COMMENT ON TABLE oro_order IS 'Bestellungen — commandes';
`

// first and last names of the source data: distinctive, so a test can
// look for each in an export.
var firsts = []string{"Annelore", "Bartholomäus", "Cordula", "Dagobert", "Edeltraud", "Fridolin", "Gunhild", "Hubertus", "Irmtraud", "Jost"}
var lasts = []string{"Oberhuber", "Pfannkuch", "Quadflieg", "Rübenkamp", "Schwarzkopf", "Tiedemann", "Uhlenbrock", "Vollmer"}

func array(ss []string) string {
	return "(ARRAY['" + strings.Join(ss, "','") + "'])"
}

// SQL is the schema and the rows for psql: rows customer users and orders;
// other tables scale with it.
func SQL(rows int) string {
	if rows <= 0 {
		rows = 500
	}
	first := func(g string) string { return fmt.Sprintf("%s[1 + (%s) %% %d]", array(firsts), g, len(firsts)) }
	last := func(g string) string { return fmt.Sprintf("%s[1 + (%s / 3) %% %d]", array(lasts), g, len(lasts)) }
	phone := func(g string) string {
		return fmt.Sprintf("'+49 30 ' || lpad(((%s) * 7919 %% 9999991)::text, 7, '0')", g)
	}
	street := func(g string) string { return fmt.Sprintf("'Lindenstraße ' || (%s) || 'a'", g) }
	var b strings.Builder
	b.WriteString(schema)
	fmt.Fprintf(&b, `
INSERT INTO oro_user (username, email, first_name, last_name, phone, password, salt, last_login)
  SELECT 'admin' || g, 'admin' || g || '@oro-shop.example.de', %s, %s, %s, '$2y$13$' || md5('pw' || g), md5('s' || g),
    timestamp '2025-01-01' + g * interval '1 hour' FROM generate_series(1, 20) g;
INSERT INTO oro_customer (parent_id, name, owner_id, created_at)
  SELECT NULL, 'Firma ' || %s || ' GmbH ' || g, 1 + g %% 20, timestamp '2024-01-01' + g * interval '1 hour' FROM generate_series(1, %d) g;
UPDATE oro_customer SET parent_id = id - 1 WHERE id %% 10 = 0;
INSERT INTO oro_customer_user (customer_id, username, email, email_lowercase, first_name, middle_name, last_name, birthday,
    password, salt, confirmation_token, enabled, created_at)
  SELECT 1 + g %% %d, 'Kunde.' || g || '@Mail-Shop.example.de', 'Kunde.' || g || '@Mail-Shop.example.de',
    'kunde.' || g || '@mail-shop.example.de', %s, CASE WHEN g %% 4 = 0 THEN 'Maria' END, %s,
    date '1960-01-01' + g %% 15000, '$2y$13$' || md5('cpw' || g), md5('cs' || g), CASE WHEN g %% 3 = 0 THEN md5('tok' || g) END,
    g %% 7 <> 0, timestamp '2024-02-01' + g * interval '1 minute' FROM generate_series(1, %d) g;
INSERT INTO oro_customer_address (system_org_id, label, street, street2, city, postal_code, organization, first_name, last_name, phone, country_code)
  SELECT 1 + g %% %d, 'Zentrale', %s, CASE WHEN g %% 5 = 0 THEN 'Hinterhaus ' || g END, 'Quedlinburg', lpad((g * 37 %% 99999)::text, 5, '0'),
    'Firma GmbH ' || g, %s, %s, %s, 'DE' FROM generate_series(1, %d) g;
INSERT INTO oro_customer_user_address (system_user_id, street, city, postal_code, first_name, last_name, phone, country_code)
  SELECT g, %s, 'Wernigerode', lpad((g * 53 %% 99999)::text, 5, '0'), %s, %s, %s, 'DE' FROM generate_series(1, %d) g;
INSERT INTO oro_order (identifier, customer_id, customer_user_id, po_number, customer_notes, subtotal_value, total_value, currency, created_at)
  SELECT 'ORD-' || g, 1 + (1 + g %% %d) %% %d, 1 + g %% %d, 'PO' || g, CASE WHEN g %% 6 = 0 THEN E'Bitte bei ' || %s || E' klingeln\ttab\\back' END,
    (g %% 500) + 0.5, (g %% 500) * 1.19, 'EUR', timestamp '2025-03-01' + g * interval '7 minutes' FROM generate_series(1, %d) g;
INSERT INTO oro_order_address (order_id, kind, street, city, postal_code, organization, first_name, last_name, phone, country_code)
  SELECT 1 + g / 2, CASE WHEN g %% 2 = 0 THEN 'billing' ELSE 'shipping' END, %s, 'Halberstadt', lpad((g * 71 %% 99999)::text, 5, '0'),
    CASE WHEN g %% 3 = 0 THEN 'Büro ' || %s END, %s, %s, %s, 'DE' FROM generate_series(0, %d) g;
INSERT INTO oro_payment_transaction (entity_identifier, action, reference, access_identifier, access_token, amount, request, response, transaction_options, successful)
  SELECT g, 'purchase', 'REF' || md5('r' || g), md5('a' || g), md5('t' || g), (g %% 500) * 1.19,
    '{"card":"4111111111111111","holder":"' || %s || '"}', '{"ok":true}', NULL, g %% 9 <> 0 FROM generate_series(1, %d) g;
INSERT INTO oro_email (subject, from_name, sent, body)
  SELECT 'Ihre Bestellung ORD-' || g, %s || ' <kunde.' || g || '@mail-shop.example.de>', timestamp '2025-03-01' + g * interval '9 minutes',
    'Hallo ' || %s FROM generate_series(1, %d) g;
INSERT INTO oro_email_address (email, owner_user_id) SELECT 'kunde.' || g || '@mail-shop.example.de', 1 + g %% 20 FROM generate_series(1, %d) g;
INSERT INTO oro_audit (action, object_class, object_name, logged_at, data)
  SELECT 'update', 'CustomerUser', 'Kunde.' || g || '@Mail-Shop.example.de', timestamp '2025-01-01' + g * interval '1 minute', 'phone: ' || %s
  FROM generate_series(1, %d) g;
INSERT INTO oro_product (sku, name, description) SELECT 'SKU-' || g, 'Produkt ' || g, E'Zeile 1\nZeile 2 ' || g FROM generate_series(1, 200) g;
`,
		first("g"), last("g"), phone("g"),
		last("g"), rows/5,
		rows/5, first("g"), last("g"), rows,
		rows/5, street("g"), first("g+1"), last("g+1"), phone("g+1"), rows/5,
		street("g+7"), first("g"), last("g"), phone("g"), rows,
		rows, rows/5, rows, last("g"), rows,
		street("g+3"), last("g+2"), first("g+2"), last("g+2"), phone("g+2"), 2*rows-1,
		last("g"), rows,
		first("g"), first("g"), rows/2,
		rows/2,
		phone("g"), rows,
	)
	return b.String()
}
