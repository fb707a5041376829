package restore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitIndexes(t *testing.T) {
	for _, c := range []struct {
		name, create, want string
		later              []string
	}{
		{
			name: "keys and a foreign key",
			create: "CREATE TABLE `item` (\n  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,\n  `order_id` int(10) unsigned NOT NULL DEFAULT 0,\n" +
				"  `g` point NOT NULL,\n  `t` text DEFAULT 'KEY `x`,',\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`order_id`,`id`),\n  KEY `order_id` (`order_id`),\n" +
				"  SPATIAL KEY `g` (`g`),\n  FULLTEXT KEY `ft` (`t`),\n  KEY `two` (`id`,`order_id`) COMMENT 'a, b',\n" +
				"  CONSTRAINT `fk ``x``` FOREIGN KEY (`order_id`) REFERENCES `order` (`entity_id`) ON DELETE CASCADE,\n" +
				"  CONSTRAINT `chk` CHECK (`id` > 0)\n) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4",
			want: "CREATE TABLE `item` (\n  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,\n  `order_id` int(10) unsigned NOT NULL DEFAULT 0,\n" +
				"  `g` point NOT NULL,\n  `t` text DEFAULT 'KEY `x`,',\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`order_id`,`id`),\n  FULLTEXT KEY `ft` (`t`),\n" +
				"  CONSTRAINT `chk` CHECK (`id` > 0)\n) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4",
			later: []string{"ADD KEY `order_id` (`order_id`)", "ADD SPATIAL KEY `g` (`g`)", "ADD KEY `two` (`id`,`order_id`) COMMENT 'a, b'",
				"ADD CONSTRAINT `fk ``x``` FOREIGN KEY (`order_id`) REFERENCES `order` (`entity_id`) ON DELETE CASCADE"},
		},
		{
			name:   "key as the last line",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  KEY `id` (`id`)\n) ENGINE=InnoDB",
			want:   "CREATE TABLE `a` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB",
			later:  []string{"ADD KEY `id` (`id`)"},
		},
		{
			name:   "MyISAM stays",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  KEY `id` (`id`)\n) ENGINE=MyISAM",
			want:   "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  KEY `id` (`id`)\n) ENGINE=MyISAM",
		},
		{
			name:   "nothing to defer",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB",
			want:   "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB",
		},
		{
			name:   "a constraint name that is not a foreign key",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  CONSTRAINT `x`` FOREIGN KEY (` CHECK (`id` > 0)\n) ENGINE=InnoDB",
			want:   "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  CONSTRAINT `x`` FOREIGN KEY (` CHECK (`id` > 0)\n) ENGINE=InnoDB",
		},
		{
			name:   "not SHOW CREATE TABLE's layout",
			create: "CREATE TABLE a (id INT, KEY (id)) ENGINE=InnoDB",
			want:   "CREATE TABLE a (id INT, KEY (id)) ENGINE=InnoDB",
		},
		{name: "empty", create: "", want: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, later := splitIndexes(c.create)
			require.Equal(t, c.want, got)
			require.Equal(t, c.later, later)
		})
	}
}
