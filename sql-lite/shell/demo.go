package shell

import (
	"context"
	"fmt"
	"io"
)

// demoSQL is the sample dataset of --demo: customers and their orders.
// Orders are keyed by (customer_id, id), so one customer's orders are one
// range of the table, and a join on customers.id = orders.customer_id
// can look customers up by key. IF NOT EXISTS and INSERT IGNORE make it
// safe to load twice (a playground kept in --data-dir).
const demoSQL = `
CREATE TABLE IF NOT EXISTS customers (
  id BIGINT NOT NULL,
  name VARCHAR(64) NOT NULL,
  city VARCHAR(64),
  PRIMARY KEY (id)
);
CREATE TABLE IF NOT EXISTS orders (
  customer_id BIGINT NOT NULL,
  id BIGINT NOT NULL,
  item VARCHAR(64) NOT NULL,
  quantity INT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  PRIMARY KEY (customer_id, id)
);
INSERT IGNORE INTO customers (id, name, city) VALUES
  (1, 'Ada Lovelace', 'London'),
  (2, 'Grace Hopper', 'New York'),
  (3, 'Alan Turing', 'Manchester'),
  (4, 'Edsger Dijkstra', 'Eindhoven'),
  (5, 'Barbara Liskov', NULL);
INSERT IGNORE INTO orders (customer_id, id, item, quantity, price) VALUES
  (1, 1, 'notebook', 3, 4.50),
  (1, 2, 'fountain pen', 1, 32.00),
  (2, 1, 'compiler manual', 2, 18.25),
  (2, 2, 'moth trap', 1, 7.99),
  (2, 3, 'notebook', 5, 4.50),
  (3, 1, 'chess set', 1, 45.00),
  (4, 1, 'whiteboard marker', 12, 1.20);
`

// DemoQuery is the join the demo suggests.
const DemoQuery = `SELECT c.name, o.item, o.quantity * o.price AS total
  FROM customers c JOIN orders o ON o.customer_id = c.id
  WHERE c.city IS NOT NULL ORDER BY total DESC;`

// LoadDemo creates and fills the sample tables customers and orders and
// prints what it did and a query to try on w.
func LoadDemo(ctx context.Context, db Execer, w io.Writer) error {
	for _, st := range splitScript(demoSQL) {
		if _, err := db.Exec(ctx, st.Text); err != nil {
			return fmt.Errorf("loading the demo data (line %d of the demo script): %w", st.Line, err)
		}
	}
	fmt.Fprintf(w, "Demo data loaded: tables customers (5 rows) and orders (7 rows). Try:\n  %s\n", DemoQuery)
	return nil
}
