<?php
/**
 * WordPress configuration (sample for smtpguard import).
 */
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', 'db-secret-not-mail' );

define( 'WPMS_ON', true );
define( 'WPMS_MAILER', 'smtp' );
define( 'WPMS_SMTP_HOST', 'email-smtp.us-east-1.amazonaws.com' );
define( 'WPMS_SMTP_PORT', 587 );
define( 'WPMS_SSL', 'tls' );
define( 'WPMS_SMTP_AUTH', true );
define( 'WPMS_SMTP_USER', 'AKIAWPCONFIG0000006' );
define( 'WPMS_SMTP_PASS', 'Wp\'Pw6 \\ "dq" $notvar' ); // WP Mail SMTP

$table_prefix = 'wp_';
